//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
)

// ErrDiverged means the working copy holds writes that were never flushed
// while the snapshot in the bucket changed too. Neither side is touched:
// see the README's "Recovering from a conflict".
var ErrDiverged = errors.New("bucketsqlite: working copy and bucket snapshot have diverged")

// ErrClosed is returned by Connect and Flush after Close.
var ErrClosed = errors.New("bucketsqlite: database is closed")

// Connector is a bucketsqlite database as one sql.DB sees it. database/sql
// opens every pooled connection through it. Make one with NewConnector and
// sql.OpenDB, or let sql.Open make one from a DSN.
//
// Connectors of one bucket and key in one process share the database:
// its working copy, its restore and its flushes. Each has its own pool and
// go-sqlite3 parameters; each Close flushes what was committed; the last
// one runs the final flush and releases the working copy.
type Connector struct {
	db      *database
	params  url.Values // go-sqlite3 parameters of this handle's connections
	pragmas []string   // run on each of them

	closeOnce sync.Once
	closeErr  error
}

var _ driver.Connector = (*Connector)(nil)

// NewConnector returns a Connector for cfg, which it copies. It validates
// cfg and builds the bucket client, but makes no request: the snapshot is
// restored when the first connection is opened. A database already open
// in this process on the same bucket and key is shared, unless cfg
// disagrees with it on something that cannot be shared: that is an error
// naming the parameter.
func NewConnector(cfg *Config, opts ...Option) (*Connector, error) {
	if cfg == nil {
		return nil, dsnErr("config", "nil *Config")
	}
	cfg = cfg.Clone()
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	b, id, err := openBucket(cfg, &o)
	if err != nil {
		return nil, err
	}
	if cfg.Replica {
		id += "\x00replica" // a writer of the same key in this process is another database
	}
	db, err := share(id, cfg, func() (*database, error) { return newDatabase(cfg, &o, b, id) })
	if err != nil {
		return nil, err
	}
	pragmas := cfg.Pragmas
	if cfg.Sync == SyncLog && !cfg.Replica {
		// Frames stay in the WAL until a flush has captured them.
		pragmas = append(slices.Clone(pragmas), "wal_autocheckpoint=0")
	}
	return &Connector{db: db, params: cfg.sqliteParams(), pragmas: pragmas}, nil
}

// Driver returns the bucketsqlite driver, bound to this connector so that
// Flush(ctx, db) and Stats(db) can find it.
func (c *Connector) Driver() driver.Driver { return &boundDriver{c: c} }

// Connect returns a new go-sqlite3 connection to the working copy,
// restoring the snapshot first if this is the first connection. Concurrent
// first connections wait for one restore; a failed restore is returned and
// tried again by the next Connect. The returned connection is a
// *sqlite3.SQLiteConn: sql.Conn.Raw hands it to you as is.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := c.db.ensureReady(ctx); err != nil {
		return nil, err
	}
	open := c.db.wc.open
	if c.db.cfg.Replica {
		open = c.db.openReader
	}
	conn, err := open(c.params, c.pragmas)
	if err != nil {
		return nil, fmt.Errorf("bucketsqlite: open working copy %s: %w", c.db.wc.path, err)
	}
	return conn, nil
}

// Flush flushes the database now; see the package-level Flush. A
// persistent working copy that has not been opened yet is reconciled with
// the bucket first, so that writes it holds from an earlier run are not
// skipped. After the database's last Close it returns ErrClosed: a failed
// final flush is not retried behind the caller's back, and its working
// copy stays where Close said.
func (c *Connector) Flush(ctx context.Context) (FlushResult, error) {
	return c.db.flush(ctx, "explicit")
}

// Stats returns the database's flush statistics. They stay readable after
// Close, and then include the final flush.
func (c *Connector) Stats() Stats { return c.db.stats() }

// Close flushes what was committed and returns the flush's error; the
// database's last Close also stops the flush loop and releases the
// working copy. database/sql calls it from DB.Close, after closing idle
// connections; it does not wait for connections still in use, so the
// flush holds what was committed when it ran. If the last Close's final
// flush fails, the working copy is kept and the error names its path. A
// persistent working copy that was never opened is reconciled and flushed
// if it is ahead of the bucket; otherwise a database that never restored
// never flushes. Everything Close waits for is bounded by flush_timeout.
//
// Close is idempotent and returns the same error each time; DB.Close
// calls it only once, so a second DB.Close returns nil: GetStats keeps
// the error (LastError).
func (c *Connector) Close() error {
	c.closeOnce.Do(func() { c.closeErr = unshare(c.db) })
	return c.closeErr
}
