package driver

import (
	"errors"
	"path/filepath"
	"sync"
)

// ErrInUse means the working copy is in use by another process (its lock
// is held). Within one process, a second Connector on the same bucket and
// key shares the database instead.
var ErrInUse = errors.New("bucketsqlite: already in use")

// registry holds the databases open in this process, by identity (bucket
// and key; see openBucket): one database per snapshot, however many
// Connectors share it.
var registry = struct {
	sync.Mutex
	open map[string]*entry
}{open: map[string]*entry{}}

type entry struct {
	db   *database
	cfg  *Config
	refs int
	// closing is closed once the last Close of db is done; nil while db
	// is open. A Connector opened meanwhile waits for it, then opens the
	// database anew, so that two never flush one snapshot at once.
	closing chan struct{}
}

// share returns the database open under id, checking that cfg agrees with
// it, or the one create makes.
func share(id string, cfg *Config, create func() (*database, error)) (*database, error) {
	for {
		registry.Lock()
		e := registry.open[id]
		switch {
		case e == nil:
			db, err := create()
			if err == nil {
				registry.open[id] = &entry{db: db, cfg: cfg, refs: 1}
			}
			registry.Unlock()
			return db, err
		case e.closing != nil:
			ch := e.closing
			registry.Unlock()
			<-ch
			continue
		}
		defer registry.Unlock()
		if err := sharable(e.cfg, cfg); err != nil {
			return nil, err
		}
		e.refs++
		return e.db, nil
	}
}

// unshare is a Connector's Close: the last one closes the database, the
// others flush what was committed.
func unshare(db *database) error {
	registry.Lock()
	e := registry.open[db.id]
	e.refs--
	if e.refs > 0 {
		registry.Unlock()
		return db.closeHandle()
	}
	e.closing = make(chan struct{})
	registry.Unlock()
	err := db.close()
	registry.Lock()
	delete(registry.open, db.id)
	close(e.closing)
	registry.Unlock()
	return err
}

// sharable returns nil when a Connector for cfg can share the database
// opened for open, and otherwise an error naming the first parameter they
// disagree on. Per-connection go-sqlite3 settings may differ (each
// Connector has its own pool); the journal mode, a property of the file,
// may not.
func sharable(open, cfg *Config) error {
	differ := func(param string, was, now any) error {
		return dsnErr(param, "the database is already open in this process with %s=%v; a second handle shares it, "+
			"so it cannot have %v: use the same value, or close the first", param, was, now)
	}
	a, b := open.Bucket, cfg.Bucket
	switch {
	case a.Endpoint != b.Endpoint:
		return differ("endpoint", a.Endpoint, b.Endpoint)
	case a.Region != b.Region:
		return differ("region", a.Region, b.Region)
	case a.Profile != b.Profile:
		return differ("profile", a.Profile, b.Profile)
	case a.PathStyle != b.PathStyle:
		return differ("path_style", a.PathStyle, b.PathStyle)
	case open.FlushInterval != cfg.FlushInterval:
		return differ("flush_interval", open.FlushInterval, cfg.FlushInterval)
	case open.FlushTimeout != cfg.FlushTimeout:
		return differ("flush_timeout", open.FlushTimeout, cfg.FlushTimeout)
	case open.KeepPrevious != cfg.KeepPrevious:
		return differ("keep_previous", open.KeepPrevious, cfg.KeepPrevious)
	case samePath(open.Local) != samePath(cfg.Local):
		return differ("local", open.Local, cfg.Local)
	case open.Check != cfg.Check:
		return differ("integrity_check", open.Check, cfg.Check)
	case open.Sync != cfg.Sync:
		return differ("sync", open.Sync, cfg.Sync)
	case open.RefreshInterval != cfg.RefreshInterval:
		return differ("refresh_interval", open.RefreshInterval, cfg.RefreshInterval)
	case open.ConditionalWrites != cfg.ConditionalWrites:
		return differ("conditional_writes", open.ConditionalWrites, cfg.ConditionalWrites)
	case open.Retention != cfg.Retention:
		return differ("retention", open.Retention, cfg.Retention)
	}
	if was, now := open.sqliteParams().Get("_journal_mode"), cfg.sqliteParams().Get("_journal_mode"); was != now {
		return differ("_journal_mode", was, now)
	}
	return nil
}

// samePath spells a local= path one way: absolute, with the symbolic
// links of its directory resolved, so that one file named two ways is
// recognised.
func samePath(p string) string {
	if p == "" {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}
