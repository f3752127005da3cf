//go:build cgo

package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	if c.cfg.Replica {
		return c.restoreReplica(ctx)
	}
	start := time.Now()
	if err := c.wc.prepare(); err != nil {
		return c.wrap("open", err)
	}
	l := c.wc.facts()
	var kept *snapshot.Image // the working copy's image, when it was taken
	var r remoteFacts
	p := reconcile(bucketName(c.cfg), c.cfg.Key, l, r)
	for p.need != needNothing {
		var err error
		switch p.need {
		case needStat:
			r, err = c.stat(ctx)
			if rec := l.Record; err == nil && rec != nil && r.Found && c.cfg.Sync == SyncLog &&
				(r.ETag == rec.ETag || slices.Contains(rec.Pending, r.SHA256)) {
				r.LogNext, err = c.logNext(ctx, rec.Seq)
			}
		case needProof:
			_, err = c.b.List(ctx, bucket.ListOptions{Prefix: c.cfg.Key, PageSize: 1})
			if err != nil {
				err = fmt.Errorf("no snapshot at the key, and the bucket cannot be listed: %w", err)
			}
			r.Answers = true
		case needHash:
			if l.Record != nil && l.Record.Image != "" {
				kept, err = c.wc.image(ctx)
				if err == nil {
					l.Hash = remoteState{Image: hexSum(kept.Checksum)}.state()
				}
				break
			}
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
		p.remote = remoteState{ETag: info.ETag, SHA256: info.SnapshotHash, Seq: info.Seq, BaseSeq: info.BaseSeq}
		if info.Image != nil {
			p.remote.Image = hexSum(info.Image.Checksum)
		}
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
		ls := newLogSync(c.b, c.cfg, c.wc, c.log, restored, p, kept)
		if err := ls.begin(ctx, conn); err != nil {
			ls.close()
			conn.Close()
			return c.wrap("open", fmt.Errorf("working copy %s: %w", c.wc.path, err))
		}
		s.strategy = ls
	}
	s.start(conn, version, p.remote, p.dirty, restored, time.Since(start))
	c.sync.Store(s)
	c.log.Info("bucketsqlite: ready", "restored", restored.Found, "bytes", restored.Size, "local", c.wc.path, "pending_flush", p.dirty)
	return nil
}

// logNext returns the SHA-256 of the delta after seq, "" when there is
// none (sync=log).
func (c *database) logNext(ctx context.Context, seq uint64) (string, error) {
	a, err := c.b.Stat(ctx, snapshot.LogKey(c.cfg.Key, seq+1))
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case a.Metadata[snapshot.MetaSHA256] == "":
		return "?", nil
	}
	return a.Metadata[snapshot.MetaSHA256], nil
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
	seq, _ := strconv.ParseUint(attrs.Metadata[snapshot.MetaSeq], 10, 64)
	return remoteFacts{Known: true, Found: true, ETag: attrs.ETag, SHA256: attrs.Metadata[snapshot.MetaSHA256], Seq: seq}, nil
}
