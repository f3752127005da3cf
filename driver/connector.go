//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/buckethead/bucketsqlite/bucket"
)

// ErrDiverged means the working copy holds writes that were never flushed
// while the snapshot in the bucket changed too. Neither side is touched:
// see the README's "Recovering from a conflict".
var ErrDiverged = errors.New("bucketsqlite: working copy and bucket snapshot have diverged")

// ErrClosed is returned by Connect and Flush after Close.
var ErrClosed = errors.New("bucketsqlite: database is closed")

// Connector is a bucketsqlite database: one snapshot in a bucket, one local
// working copy, a syncer that flushes one to the other. database/sql opens
// every pooled connection through it. Make one with NewConnector and
// sql.OpenDB, or let sql.Open make one from a DSN.
type Connector struct {
	cfg   *Config
	b     bucket.Bucket
	id    string // identity in the in-process registry
	where string // the database's location and key, for messages
	log   *slog.Logger
	wc    *workingCopy
	// custom reports a bucket given with WithBucket.
	custom bool

	// gate serializes the restore and the lifecycle below; a channel so
	// that waiting honours the caller's ctx.
	gate  chan struct{}
	state lifecycle
	tried bool                   // a restore was attempted
	sync  atomic.Pointer[syncer] // set once ready

	// life is cancelled by Close: a restore in progress stops waiting.
	life     context.Context
	stopLife context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// lifecycle is a Connector's state.
type lifecycle int

const (
	stateNew   lifecycle = iota // no restore yet, or only failed ones
	stateReady                  // restored; the syncer runs
	stateClosed
)

var _ driver.Connector = (*Connector)(nil)

// NewConnector returns a Connector for cfg, which it copies. It validates
// cfg and builds the bucket client, but makes no request: the snapshot is
// restored when the first connection is opened.
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
	c := &Connector{cfg: cfg, log: o.logger, gate: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("key", cfg.Key)
	b, id, err := openBucket(cfg, &o)
	if err != nil {
		return nil, err
	}
	c.b, c.id, c.where, c.custom = b, id, location(cfg), o.bucket != nil
	if c.wc, err = newWorkingCopy(cfg, bucketName(cfg), c.log); err != nil {
		return nil, err
	}
	if err := acquire(c.id, c.where); err != nil {
		return nil, err
	}
	c.life, c.stopLife = context.WithCancel(context.Background())
	return c, nil
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
	if err := c.ensureReady(ctx); err != nil {
		return nil, err
	}
	conn, err := c.wc.open()
	if err != nil {
		return nil, fmt.Errorf("bucketsqlite: open working copy %s: %w", c.wc.path, err)
	}
	return conn, nil
}

func (c *Connector) lock(ctx context.Context) error {
	select {
	case c.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Connector) unlock() { <-c.gate }

// ensureReady restores the database unless that is done.
func (c *Connector) ensureReady(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	return c.readyLocked(ctx)
}

// readyLocked is ensureReady with the gate held.
func (c *Connector) readyLocked(ctx context.Context) error {
	switch c.state {
	case stateClosed:
		return ErrClosed
	case stateReady:
		return nil
	}
	// Close cancels a restore in progress rather than wait for it.
	ctx, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(c.life, cancel)()
	defer cancel()
	c.tried = true
	if err := c.restore(ctx); err != nil {
		c.log.Error("bucketsqlite: restore failed", "err", err)
		return err
	}
	c.state = stateReady
	return nil
}

// Flush flushes the database now; see the package-level Flush. A
// persistent working copy that has not been opened yet is reconciled with
// the bucket first, so that writes it holds from an earlier run are not
// skipped. After Close it returns ErrClosed: a failed final flush is not
// retried behind the caller's back, and its working copy stays where Close
// said.
func (c *Connector) Flush(ctx context.Context) (FlushResult, error) {
	s, err := c.syncerFor(ctx)
	if err != nil || s == nil {
		return FlushResult{Idle: err == nil}, err
	}
	res, err := s.flush(ctx, "explicit")
	if err != nil {
		return res, c.wrap("flush", err)
	}
	return res, nil
}

// syncerFor returns the syncer, restoring a persistent working copy first;
// nil when there is nothing to flush: never restored, nothing local.
func (c *Connector) syncerFor(ctx context.Context) (*syncer, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	state, s := c.state, c.sync.Load()
	c.unlock()
	switch {
	case state == stateClosed:
		return nil, ErrClosed
	case state == stateReady:
		return s, nil
	case !c.wc.persist || !c.wc.exists():
		// Never restored: nothing to flush, and an empty database must
		// never be uploaded.
		return nil, nil
	}
	if err := c.ensureReady(ctx); err != nil {
		return nil, err
	}
	return c.sync.Load(), nil
}

// Stats returns the connector's flush statistics. They stay readable
// after Close, and then include the final flush.
func (c *Connector) Stats() Stats {
	s := c.sync.Load()
	if s == nil {
		return Stats{LocalPath: c.wc.path}
	}
	return s.Stats()
}

// Close stops the flush loop, runs the final flush and returns its error.
// database/sql calls it from DB.Close, after closing idle connections; it
// does not wait for connections still in use, so the final flush holds
// what was committed when it ran. If the final flush fails, the working
// copy is kept and the error names its path. A persistent working copy
// that was never opened is reconciled and flushed if it is ahead of the
// bucket; otherwise a connector that never restored never flushes.
// Everything Close waits for is bounded by flush_timeout.
//
// Close is idempotent and returns the same error each time; DB.Close
// calls it only once, so a second DB.Close returns nil: GetStats keeps
// the error (LastError).
func (c *Connector) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Connector) close() error {
	defer release(c.id)
	ctx, cancel := withTimeout(context.Background(), c.cfg.FlushTimeout)
	defer cancel()
	select {
	case c.gate <- struct{}{}:
	default:
		// A restore is in progress: cancel it rather than wait for it.
		c.stopLife()
		if err := c.lock(ctx); err != nil {
			return fmt.Errorf("bucketsqlite: close %s: wait for the restore in progress: %w", c.where, err)
		}
	}
	var err error
	if c.state == stateNew && !c.tried && c.wc.persist && c.wc.exists() {
		// A working copy that may be ahead of the bucket is flushed even
		// if no query ever opened it.
		err = c.readyLocked(ctx)
	}
	c.stopLife()
	state, s := c.state, c.sync.Load()
	c.state = stateClosed
	c.unlock()
	if state != stateReady {
		c.wc.release(err == nil)
		return err
	}
	if ferr := s.close(ctx); ferr != nil {
		c.wc.release(false)
		return fmt.Errorf("%w; every committed write is kept in the working copy at %s", c.wrap("flush", ferr), c.wc.path)
	}
	c.wc.release(true)
	return nil
}
