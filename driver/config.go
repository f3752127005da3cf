package driver

import (
	"fmt"
	"net/url"

	"github.com/buckethead/bucketsqlite/bucket"
)

// normalize checks every field of cfg and applies the defaults it leaves
// out. ParseDSN and NewConnector both call it, so a hand-built Config is
// checked exactly like a parsed one.
func (cfg *Config) normalize() error {
	if err := bucket.ValidateKey(cfg.Key); err != nil {
		return dsnErr("key", "%v", err)
	}
	if cfg.FlushInterval < 0 || cfg.FlushTimeout < 0 {
		return dsnErr("flush_interval", "negative duration")
	}
	for name, vals := range cfg.SQLite {
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
	return p
}
