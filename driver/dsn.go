package driver

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/param"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Defaults of the DSN parameters, chosen for users: changes reach the
// bucket within a minute while an idle or read-only database costs no
// requests at all; the previous snapshot is kept; restores are fully
// checked.
const (
	DefaultFlushInterval = time.Minute
	// DefaultLogFlushInterval is the flush_interval of a DSN with
	// sync=log that gives none. A flush of the log costs one small PUT
	// (and a HEAD) when something changed and nothing when not, so
	// changes can reach the bucket every second: at most a second of
	// acknowledged writes is at risk, and replicas follow within about
	// two.
	DefaultLogFlushInterval = time.Second
	DefaultFlushTimeout     = 10 * time.Minute
	DefaultKeepPrevious     = true
	DefaultJournalMode      = "WAL"
	DefaultBusyTimeout      = 5000 // milliseconds
	// DefaultLocalSynchronous is the _synchronous setting of a persistent
	// working copy (local=): every commit is on disk before it returns,
	// so a power loss keeps it too. A temporary working copy keeps
	// go-sqlite3's NORMAL: it does not outlive the machine anyway.
	DefaultLocalSynchronous = "FULL"
)

// Config is a parsed DSN. ParseDSN fills it (starting from NewConfig's
// defaults) and FormatDSN turns it back into a DSN that parses to the same
// Config. Build one by hand for NewConnector, which checks it exactly as
// ParseDSN checks a DSN.
type Config struct {
	// Bucket is where the snapshot lives, a bucket URL as bucket.ParseURL
	// reads it: an S3 bucket with its endpoint, region, path_style and
	// profile (s3://my-bucket?region=auto&endpoint=...), a directory
	// (file:///var/lib/app, or file:data relative to the working
	// directory), or a process-local memory bucket (mem://name). The zero
	// URL means no bucket: NewConnector's WithBucket must supply one.
	//
	// Validation (ParseDSN, NewConnector) gives a location one spelling:
	// the prefix of an s3 or mem URL moves to the front of Key, and the
	// directories in a file bucket's Key move into Dir, so that Key is
	// the file's name, as in a DSN.
	Bucket bucket.URL
	// Key is the snapshot's key in the bucket, e.g. "apps/todo.db".
	Key string

	// FlushInterval is how often changes are flushed in the background;
	// 0 disables the loop (flush with Flush and on Close only). NewConfig
	// sets DefaultFlushInterval; ParseDSN sets DefaultLogFlushInterval
	// instead for a DSN with sync=log and no flush_interval.
	FlushInterval time.Duration
	// FlushTimeout bounds each background and final flush; 0 means no
	// bound.
	FlushTimeout time.Duration
	// KeepPrevious keeps the snapshot being replaced at KEY.prev.
	KeepPrevious bool
	// Local is a persistent path for the working copy. Empty means a
	// private temp directory, removed after a clean Close.
	Local string
	// Check is the integrity check a restore runs.
	Check snapshot.Check
	// Sync is how flushes ship the database: SyncFull uploads the whole
	// database each time, SyncLog only the pages that changed.
	Sync SyncMode
	// ConditionalWrites says whether the bucket's enforcement of write
	// conditions, on which fencing a second writer rests, is checked.
	ConditionalWrites ConditionalWrites
	// Retention is how long old bases and deltas are kept, so that a
	// point-in-time restore (snapshot.RestoreOptions.At) can go back that
	// far: a compaction archives the base it replaces and prunes what
	// has expired. 0 keeps only what a restore of the latest state
	// needs. It needs SyncLog.
	Retention time.Duration
	// Replica opens the database as a read replica: it restores like a
	// writer, then follows the writer's delta log, never writes to the
	// bucket, and refuses writes. See the package doc's "Read replicas".
	Replica bool
	// RefreshInterval is how often a replica asks the bucket for the
	// writer's next delta; 0 disables the loop (refresh with Refresh
	// only). Ignored unless Replica is set.
	RefreshInterval time.Duration

	// SQLite holds go-sqlite3 connection parameters (_journal_mode,
	// _busy_timeout, _foreign_keys, ...), by their canonical names. The
	// driver adds _journal_mode=WAL and _busy_timeout=5000 when they are
	// absent.
	SQLite url.Values
	// Pragmas are run on every pooled connection, as "NAME=VALUE"
	// (_pragma=NAME(VALUE) in a DSN, repeatable): those go-sqlite3 has no
	// parameter for. A pragma it has one for (foreign_keys, ...) is kept
	// in SQLite instead.
	Pragmas []string
}

// NewConfig returns a Config holding the defaults.
func NewConfig() *Config {
	return &Config{
		FlushInterval: DefaultFlushInterval,
		FlushTimeout:  DefaultFlushTimeout,
		KeepPrevious:  DefaultKeepPrevious,
		Check:         snapshot.CheckFull,

		RefreshInterval: DefaultRefreshInterval,
	}
}

// DSNError is a DSN that cannot be used. It names the parameter (or part
// of the DSN) at fault; it never repeats credentials.
type DSNError struct {
	// Param is the DSN parameter at fault, or a part of the DSN: "dsn"
	// (the whole of it), "scheme", "bucket", "key" or "query". With a
	// Config, it names the field the parameter sets ("bucket" for
	// Config.Bucket).
	Param string
	// Msg says what is wrong with it.
	Msg string
}

// Error implements error. Param "dsn", the whole DSN, goes without
// saying.
func (e *DSNError) Error() string {
	if e.Param == "dsn" {
		return "bucketsqlite: invalid DSN: " + e.Msg
	}
	return fmt.Sprintf("bucketsqlite: invalid DSN: %s: %s", e.Param, e.Msg)
}

// ErrInvalidDSN is matched (errors.Is) by every *DSNError.
var ErrInvalidDSN = errors.New("bucketsqlite: invalid DSN")

// Is makes errors.Is(err, ErrInvalidDSN) hold.
func (e *DSNError) Is(target error) bool { return target == ErrInvalidDSN }

func dsnErr(param, format string, args ...any) error {
	return &DSNError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// ParseDSN parses a bucketsqlite DSN, a bucket location whose path ends
// in the snapshot's key:
//
//	s3://BUCKET/KEY?region=auto&endpoint=https://ACCOUNT.r2.cloudflarestorage.com
//	file:///DIR/KEY    a directory bucket at DIR; KEY is the last path segment
//	file:DIR/KEY       the same, DIR relative to the working directory
//	file:KEY           the working directory itself
//	mem://NAME/KEY     a process-local memory bucket
//
// The location (the DSN without its key, with the parameters endpoint,
// region, path_style and profile) is a bucket URL: bucket.ParseURL reads
// it, so a DSN and a bucket URL follow one grammar, documented there. The
// parameters, each at most once, are:
//
//	endpoint, region, path_style, profile   S3 settings (s3:// only)
//	flush_interval   Go duration; 0 disables the background loop (default 1m)
//	flush_timeout    Go duration bounding each flush; 0: none (default 10m)
//	keep_previous    boolean: keep the replaced snapshot at KEY.prev (default true)
//	local            persistent working-copy path (default: a private temp dir)
//	integrity_check  full|quick|none, run on restore (default full)
//	sync             full|log: upload the whole database, or only the pages
//	                 that changed, as deltas beside it (default full; see SyncMode)
//	conditional_writes  auto|probe|trust|off: check that the bucket enforces
//	                 write conditions before the first upload (default auto;
//	                 see ConditionalWrites)
//	retention        Go duration: keep old bases and deltas that long for
//	                 point-in-time restores (default 0; needs sync=log)
//	replica          boolean: a read replica that follows the writer's log and
//	                 refuses writes (default false; see "Read replicas")
//	refresh_interval Go duration: how often a replica polls; 0: only on
//	                 Refresh (default 1s)
//	_journal_mode, _busy_timeout, _foreign_keys, ...   go-sqlite3 settings
//
// A boolean, here as in go-sqlite3's parameters, is true, 1, yes or on,
// or false, 0, no or off, in any case.
//
// The path is percent-encoded: write %3F for '?', %23 for '#' and %25
// for '%' in a key or directory. Parameter values are query-encoded, in
// which '+' means a space: write %2B for a '+' (local=/var/lib/app%2B1.db),
// %26 for '&' and %25 for '%'. FormatDSN writes them so.
//
// Unknown parameters, repeated parameters and malformed values are
// *DSNError values naming the parameter or part of the DSN at fault: a
// typo must not silently change durability. Credentials never go in a
// DSN; a DSN with user info is rejected, and no error repeats one.
func ParseDSN(dsn string) (*Config, error) {
	if dsn == ":memory:" || strings.HasPrefix(dsn, "file::memory:") {
		return nil, dsnErr("dsn", "an in-memory database has nowhere to be kept: use mem://NAME/KEY for a process-local bucket (tests), or a real bucket")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url's messages quote the input, which could hold a secret.
		return nil, dsnErr("dsn", "not a URL")
	}
	if u.Fragment != "" || strings.Contains(dsn, "#") {
		return nil, dsnErr("dsn", "unexpected fragment (#...); write %%23 for a '#' in a key")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, dsnErr("query", "%v", err)
	}
	// The driver's parameters are its own; the rest belong to the
	// location, whose parser knows them and rejects unknown ones.
	own := url.Values{}
	for name, vals := range q {
		if isDriverParam(name) {
			own[name] = vals
			delete(q, name)
		}
	}
	loc, key := splitDSN(u)
	loc.RawQuery = q.Encode()
	cfg := NewConfig()
	if cfg.Bucket, err = bucket.ParseURL(loc.String()); err != nil {
		return nil, locationErr(err, "dsn")
	}
	cfg.Key = key
	for _, name := range slices.Sorted(maps.Keys(own)) {
		if n := len(own[name]); n != 1 && name != "_pragma" {
			return nil, dsnErr(name, "given %d times", n)
		}
		for _, v := range own[name] {
			if err := cfg.set(name, v); err != nil {
				return nil, err
			}
		}
	}
	if _, given := own["flush_interval"]; !given {
		cfg.FlushInterval = cfg.Sync.defaultFlushInterval()
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// splitDSN splits a DSN into its location (without a query) and its key:
// the whole path of s3:// and mem:// DSNs, the last path segment of
// file: ones.
func splitDSN(u *url.URL) (url.URL, string) {
	loc := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Opaque: u.Opaque}
	if u.Scheme != "file" {
		// Other schemes than s3 and mem are the location parser's to reject.
		return loc, strings.TrimPrefix(u.Path, "/")
	}
	p := u.Path
	if u.Opaque != "" {
		var err error
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return loc, "" // the location parser reports the bad escape
		}
	}
	i := strings.LastIndex(p, "/")
	dir, key := p[:i+1], p[i+1:] // the location parser trims dir's slash
	switch {
	case u.Opaque == "":
		loc.Path = dir
	case dir == "":
		loc.Opaque = "." // file:KEY
	default:
		loc.Opaque = (&url.URL{Path: dir}).EscapedPath()
	}
	return loc, key
}

// locationErr turns the location parser's error into a *DSNError naming
// the same part; whole names the part that the parser calls "url".
func locationErr(err error, whole string) error {
	var ue *bucket.URLError
	if !errors.As(err, &ue) {
		return dsnErr("bucket", "%v", err)
	}
	switch ue.Param {
	case "url":
		return &DSNError{Param: whole, Msg: ue.Msg}
	case "prefix":
		return &DSNError{Param: "bucket", Msg: "prefix " + ue.Msg}
	}
	return &DSNError{Param: ue.Param, Msg: ue.Msg}
}

// isDriverParam reports whether a DSN parameter is the driver's (or
// go-sqlite3's) rather than the bucket location's.
func isDriverParam(name string) bool {
	switch name {
	case "flush_interval", "flush_timeout", "keep_previous", "local", "integrity_check", "conditional_writes", "sync", "retention",
		"replica", "refresh_interval",
		"cache", "mode", "parseTime":
		return true
	}
	return strings.HasPrefix(name, "_")
}

// set sets the driver parameter name from its DSN value. Checks that a
// hand-built Config needs as well are normalize's.
func (cfg *Config) set(name, val string) error {
	switch name {
	case "flush_interval", "flush_timeout":
		d, err := time.ParseDuration(val)
		if err != nil {
			return dsnErr(name, "want a Go duration such as 30s or 5m, got %q", val)
		}
		if name == "flush_interval" {
			cfg.FlushInterval = d
		} else {
			cfg.FlushTimeout = d
		}
	case "retention":
		d, err := time.ParseDuration(val)
		if err != nil {
			return dsnErr(name, "want a Go duration such as 72h, got %q", val)
		}
		cfg.Retention = d
	case "keep_previous", "replica":
		b, err := param.ParseBool(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		if name == "replica" {
			cfg.Replica = b
		} else {
			cfg.KeepPrevious = b
		}
	case "refresh_interval":
		d, err := time.ParseDuration(val)
		if err != nil {
			return dsnErr(name, "want a Go duration such as 1s or 500ms, got %q", val)
		}
		cfg.RefreshInterval = d
	case "local":
		if val == "" {
			return dsnErr(name, "empty path")
		}
		cfg.Local = val
	case "integrity_check":
		c, err := snapshot.ParseCheck(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		cfg.Check = c
	case "sync":
		m, err := parseSyncMode(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		cfg.Sync = m
	case "conditional_writes":
		c, err := parseConditionalWrites(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		cfg.ConditionalWrites = c
	case "_pragma":
		return cfg.setPragma(val)
	default: // "_...", go-sqlite3's
		if why := otherDrivers[name]; why != "" {
			return dsnErr(name, "%s", why)
		}
		canon, v, err := sqliteParam(name, val)
		if err != nil {
			return err
		}
		if cfg.SQLite == nil {
			cfg.SQLite = url.Values{}
		}
		if cfg.SQLite.Has(canon) {
			return dsnErr(name, "given twice (also as %s)", canon)
		}
		cfg.SQLite.Set(canon, v)
	}
	return nil
}
