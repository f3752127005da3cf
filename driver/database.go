//go:build cgo

package driver

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/buckethead/bucketsqlite/bucket"
)

// database is one bucketsqlite database in this process: one snapshot in
// a bucket, one local working copy, a syncer that flushes one to the
// other. Every Connector (one per sql.DB) opened on the same bucket and
// key shares it; the registry counts them, and the last Close releases
// it.
type database struct {
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
	tried bool                    // a restore was attempted
	sync  atomic.Pointer[syncer]  // set once ready
	rep   atomic.Pointer[replica] // a read replica's, set once ready

	// life is cancelled by Close: a restore in progress stops waiting.
	life     context.Context
	stopLife context.CancelFunc
}

// lifecycle is a database's state.
type lifecycle int

const (
	stateNew   lifecycle = iota // no restore yet, or only failed ones
	stateReady                  // restored; the syncer runs
	stateClosed
)

// newDatabase opens cfg's bucket and prepares its working copy; it makes
// no request. id is its identity in the registry.
func newDatabase(cfg *Config, o *options, b bucket.Bucket, id string) (*database, error) {
	c := &database{cfg: cfg, log: o.logger, gate: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("key", cfg.Key)
	c.b, c.id, c.where, c.custom = answered{b}, id, location(cfg), o.bucket != nil
	var err error
	if c.wc, err = newWorkingCopy(cfg, bucketName(cfg), c.log); err != nil {
		return nil, err
	}
	c.life, c.stopLife = context.WithCancel(context.Background())
	return c, nil
}

func (c *database) lock(ctx context.Context) error {
	select {
	case c.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *database) unlock() { <-c.gate }

// ensureReady restores the database unless that is done.
func (c *database) ensureReady(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	return c.readyLocked(ctx)
}

// readyLocked is ensureReady with the gate held.
func (c *database) readyLocked(ctx context.Context) error {
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

// flush flushes the database now (Connector.Flush).
func (c *database) flush(ctx context.Context, why string) (FlushResult, error) {
	if c.cfg.Replica {
		return FlushResult{Idle: true}, nil // a replica has nothing to flush
	}
	s, err := c.syncerFor(ctx)
	if err != nil || s == nil {
		return FlushResult{Idle: err == nil}, err
	}
	res, err := s.flush(ctx, why)
	if err != nil {
		return res, c.wrap("flush", err)
	}
	return res, nil
}

// syncerFor returns the syncer, restoring a persistent working copy first;
// nil when there is nothing to flush: never restored, nothing local.
func (c *database) syncerFor(ctx context.Context) (*syncer, error) {
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

// stats returns the database's statistics (Connector.Stats).
func (c *database) stats() Stats {
	if r := c.rep.Load(); r != nil {
		return r.Stats()
	}
	s := c.sync.Load()
	if s == nil {
		return Stats{LocalPath: c.wc.path, Replica: c.cfg.Replica}
	}
	return s.Stats()
}

// close is the last Connector's Close: it stops the syncer after a final
// flush and releases the working copy.
func (c *database) close() error {
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
	if c.state == stateNew && !c.tried && c.wc.persist && c.wc.exists() && !c.cfg.Replica {
		// A working copy that may be ahead of the bucket is flushed even
		// if no query ever opened it.
		err = c.readyLocked(ctx)
	}
	c.stopLife()
	state, s := c.state, c.sync.Load()
	c.state = stateClosed
	c.unlock()
	if c.cfg.Replica {
		return c.closeReplica()
	}
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

// closeHandle is the Close of a Connector that is not the database's
// last: it flushes what was committed, within flush_timeout.
func (c *database) closeHandle() error {
	ctx, cancel := withTimeout(context.Background(), c.cfg.FlushTimeout)
	defer cancel()
	_, err := c.flush(ctx, "close")
	return err
}
