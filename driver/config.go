package driver

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// normalize checks every field of cfg and gives its location one
// spelling. ParseDSN and NewConnector both call it, so a hand-built Config
// is checked exactly like a parsed one, and each error names its own
// parameter.
func (cfg *Config) normalize() error {
	if cfg.Bucket != (bucket.URL{}) {
		// The same check as a DSN's location gets: through its string.
		u, err := bucket.ParseURL(cfg.Bucket.String())
		if err != nil {
			return locationErr(err, "bucket")
		}
		cfg.Bucket = u
	}
	if cfg.Key == "" {
		return dsnErr("key", "missing: the DSN's path names the snapshot, as in s3://BUCKET/app.db")
	}
	if err := validateKey(cfg.Key); err != nil {
		return err
	}
	cfg.Bucket, cfg.Key = canonicalLocation(cfg.Bucket, cfg.Key)
	if err := validateKey(cfg.Key); err != nil { // a prefix made it too long
		return err
	}
	if cfg.FlushInterval < 0 {
		return dsnErr("flush_interval", "negative (%v)", cfg.FlushInterval)
	}
	if cfg.FlushTimeout < 0 {
		return dsnErr("flush_timeout", "negative (%v)", cfg.FlushTimeout)
	}
	if cfg.RefreshInterval < 0 {
		return dsnErr("refresh_interval", "negative (%v)", cfg.RefreshInterval)
	}
	if _, err := snapshot.ParseCheck(cfg.Check.String()); err != nil {
		return dsnErr("integrity_check", "%v", err)
	}
	if _, err := parseSyncMode(cfg.Sync.String()); err != nil {
		return dsnErr("sync", "%v", err)
	}
	if cfg.Retention < 0 {
		return dsnErr("retention", "negative (%v)", cfg.Retention)
	}
	if cfg.Retention > 0 && cfg.Sync != SyncLog {
		return dsnErr("retention", "keeps the bases and deltas of a delta log: it needs sync=log")
	}
	if err := checkPragmas(cfg.Pragmas); err != nil {
		return err
	}
	if _, err := parseConditionalWrites(cfg.ConditionalWrites.String()); err != nil {
		return dsnErr("conditional_writes", "%v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.SQLite)) {
		vals := cfg.SQLite[name]
		if len(vals) != 1 {
			return dsnErr(name, "want exactly one value")
		}
		canon, v, err := sqliteParam(name, vals[0])
		if err != nil {
			return err
		}
		if canon != name || v != vals[0] {
			return dsnErr(name, "use the canonical form %s=%s", canon, v)
		}
	}
	return nil
}

// validateKey is snapshot.ValidateKey (bucket.ValidateKey, and the
// namespace a database keeps beside its key), as a *DSNError.
func validateKey(key string) error {
	if err := snapshot.ValidateKey(key); err != nil {
		return dsnErr("key", "%s", strings.TrimPrefix(err.Error(), bucket.ErrInvalidKey.Error()+" "))
	}
	return nil
}

// canonicalLocation spells the valid location (u, key) the way ParseDSN
// reads it from a DSN: the prefix of an s3 or mem URL moves into the key,
// and the directories of a file bucket's key into the directory. The
// bucket and key are the same either way; one spelling makes FormatDSN
// round-trip and gives a database one identity in the in-use registry and
// one lock (a directory bucket's lock is in its root).
func canonicalLocation(u bucket.URL, key string) (bucket.URL, string) {
	switch u.Scheme {
	case "s3", "mem":
		key, u.Prefix = u.Prefix+key, ""
	case "file":
		if i := strings.LastIndex(key, "/"); i >= 0 {
			dir := u.Dir
			if !strings.HasSuffix(dir, "/") {
				dir += "/"
			}
			u.Dir, key = dir+key[:i], key[i+1:]
		}
	}
	return u, key
}

// location names cfg's bucket without its S3 settings, as Config.Bucket
// spelled it before it held a bucket.URL: the sync state beside a working
// copy records it, and messages show it. Empty without a bucket.
func (cfg *Config) location() string {
	if cfg.Bucket == (bucket.URL{}) {
		return ""
	}
	u := bucket.URL{Scheme: cfg.Bucket.Scheme, Bucket: cfg.Bucket.Bucket, Prefix: cfg.Bucket.Prefix, Dir: cfg.Bucket.Dir}
	return u.String()
}

// sqliteParams returns the working copy's go-sqlite3 parameters: the
// DSN's, with the driver's defaults where they are absent.
func (cfg *Config) sqliteParams() url.Values {
	p := url.Values{}
	for k, v := range cfg.SQLite {
		p[k] = v
	}
	if !p.Has("_journal_mode") {
		p.Set("_journal_mode", DefaultJournalMode)
	}
	if !p.Has("_busy_timeout") {
		p.Set("_busy_timeout", fmt.Sprint(DefaultBusyTimeout))
	}
	if cfg.Local != "" && !p.Has("_synchronous") {
		// A persistent working copy promises that every acknowledged
		// commit survives a crash, power loss included: in WAL mode,
		// NORMAL (go-sqlite3's default) can lose the last commits then.
		p.Set("_synchronous", DefaultLocalSynchronous)
	}
	return p
}
