//go:build cgo

package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// restore reconciles the working copy with the bucket (see reconcile),
// carries the plan out and starts the syncer. Nothing is lost on either
// side: a working copy with writes the bucket lacks is kept (and flushed),
// a bucket ahead of a clean working copy wins, and when both changed,
// ErrDiverged keeps both.
func (c *database) restore(ctx context.Context) error {
	start := time.Now()
	if err := c.wc.prepare(); err != nil {
		return c.wrap("open", err)
	}
	l := c.wc.facts()
	var r remoteFacts
	p := reconcile(bucketName(c.cfg), c.cfg.Key, l, r)
	for p.need != needNothing {
		var err error
		switch p.need {
		case needStat:
			r, err = c.stat(ctx)
		case needProof:
			_, err = c.b.List(ctx, bucket.ListOptions{Prefix: c.cfg.Key, PageSize: 1})
			if err != nil {
				err = fmt.Errorf("no snapshot at the key, and the bucket cannot be listed: %w", err)
			}
			r.Answers = true
		case needHash:
			l.Hash, err = c.wc.hash(ctx)
			if err != nil {
				err = fmt.Errorf("read working copy %s: %w", c.wc.path, err)
			}
		case needCheck:
			if err = c.wc.check(ctx); err != nil {
				err = fmt.Errorf("working copy %s is damaged, so it was neither used nor uploaded; the bucket was not touched: %w", c.wc.path, err)
			}
			l.Checked = true
		}
		if err != nil {
			return c.wrap("restore", err)
		}
		p = reconcile(bucketName(c.cfg), c.cfg.Key, l, r)
	}
	var restored snapshot.Info
	switch p.action {
	case actRefuse:
		if errors.Is(p.err, errForeignCopy) {
			return dsnErr("local", "%s: %v; use another path", c.wc.path, p.err)
		}
		return fmt.Errorf("%w (working copy %s, snapshot %s)", p.err, c.wc.path, c.where)
	case actRestore:
		if !l.Exists {
			if err := c.wc.removeSideFiles(); err != nil {
				return c.wrap("restore", err)
			}
		}
		info, err := snapshot.RestoreFile(ctx, c.b, c.cfg.Key, c.wc.path, snapshot.RestoreOptions{Check: c.cfg.Check, Image: c.cfg.Sync == SyncLog})
		if err != nil {
			return c.wrap("restore", err)
		}
		if l.Exists && !info.Found {
			return c.wrap("restore", errors.New("the snapshot disappeared during restore; try again"))
		}
		restored = info
		p.remote = remoteState{ETag: info.ETag, SHA256: info.SnapshotHash}
	case actKeep:
		c.log.Info("bucketsqlite: "+p.why, "local", c.wc.path)
	}
	c.wc.create()
	conn, err := c.wc.openFlushConn()
	if err != nil {
		return c.wrap("open", fmt.Errorf("working copy %s: %w", c.wc.path, err))
	}
	if c.cfg.Sync == SyncLog {
		if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0", nil); err != nil {
			conn.Close()
			return c.wrap("open", fmt.Errorf("working copy %s: %w", c.wc.path, err))
		}
	}
	version, err := snapshot.DataVersion(ctx, conn)
	if err == nil {
		err = c.wc.begin(p.remote, p.dirty)
	}
	if err != nil {
		conn.Close()
		return c.wrap("open", fmt.Errorf("working copy %s: %w", c.wc.path, err))
	}
	s := newSyncer(c.b, c.cfg, c.wc, c.log, mustProbe(c.cfg, c.custom))
	if c.cfg.Sync == SyncLog {
		s.strategy = newLogSync(c.b, c.cfg, c.wc, c.log, restored)
	}
	s.start(conn, version, p.remote, p.dirty, restored, time.Since(start))
	c.sync.Store(s)
	c.log.Info("bucketsqlite: ready", "restored", restored.Found, "bytes", restored.Size, "local", c.wc.path, "pending_flush", p.dirty)
	return nil
}

// stat asks the bucket about the snapshot.
func (c *database) stat(ctx context.Context) (remoteFacts, error) {
	attrs, err := c.b.Stat(ctx, c.cfg.Key)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return remoteFacts{Known: true}, nil
	case err != nil:
		return remoteFacts{}, err
	}
	return remoteFacts{Known: true, Found: true, ETag: attrs.ETag, SHA256: attrs.Metadata[snapshot.MetaSHA256]}, nil
}
