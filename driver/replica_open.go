//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"fmt"
	"maps"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// restoreReplica is a replica's restore: it resumes a persistent working
// copy that its record proves current to some sequence (catching up from
// there), or restores the base and its log, then starts following.
func (c *database) restoreReplica(ctx context.Context) error {
	start := time.Now()
	if err := c.wc.prepare(); err != nil {
		return c.wrap("open", err)
	}
	removeScratch(scratchPath(c.wc.path)) // a rebase's, by a process killed in it
	r := &replica{b: c.b, key: c.cfg.Key, wc: c.wc, log: c.log.With("replica", true), check: c.cfg.Check,
		interval: c.cfg.RefreshInterval, sem: make(chan struct{}, 1)}
	resumed, err := c.resumeReplica(r)
	if err != nil {
		return c.wrap("restore", err)
	}
	var info snapshot.Info
	if !resumed {
		if !c.wc.exists() {
			if err := c.wc.removeSideFiles(); err != nil {
				return c.wrap("restore", err)
			}
		}
		info, err = snapshot.RestoreFile(ctx, c.b, c.cfg.Key, c.wc.path, snapshot.RestoreOptions{Check: c.cfg.Check, Image: true})
		if err != nil {
			return c.wrap("restore", err)
		}
		if !info.Found {
			return c.wrap("restore", fmt.Errorf("%w: the bucket holds no database at the key yet: a replica needs the writer's first flush", bucket.ErrNotFound))
		}
		r.setBase(info)
		r.stats.Restored, r.stats.RestoredBytes = true, info.Size
		r.stats.BytesDownloaded, r.stats.DeltasDownloaded = info.Size+info.DeltaBytes, int64(info.Deltas)
	}
	busy, _ := strconv.Atoi(c.cfg.sqliteParams().Get("_busy_timeout"))
	if r.ap, err = openApplier(c.wc.path, time.Duration(busy)*time.Millisecond); err != nil {
		return c.wrap("open", fmt.Errorf("working copy %s: %w", c.wc.path, err))
	}
	r.stats.LocalPath = c.wc.path
	if resumed {
		// Catch up from where the working copy is; a bucket out of reach
		// leaves it serving what it has, and says so in Stats.
		if err := r.refresh(ctx); err != nil {
			c.log.Warn("bucketsqlite: replica resumed from its working copy but could not catch up", "local", c.wc.path, "seq", r.seq, "err", err)
		}
	} else {
		r.save()
	}
	r.stats.RestoreDuration = time.Since(start)
	r.start()
	c.rep.Store(r)
	c.log.Info("bucketsqlite: replica ready", "seq", r.seq, "resumed", resumed, "local", c.wc.path)
	return nil
}

// resumeReplica sets r up from a persistent working copy whose record
// names this database and whose image is the one the record holds: the
// state after delta record.Seq. It reports false when the working copy
// cannot be trusted that way (then it is restored over), and refuses one
// holding writes never flushed, which a replica would throw away.
func (c *database) resumeReplica(r *replica) (bool, error) {
	if !c.wc.persist || !c.wc.exists() {
		return false, nil
	}
	rec := readState(c.wc.path)
	if rec != nil && rec.Dirty {
		return false, dsnErr("local", "%s holds writes that were never flushed (a writer's working copy): "+
			"a replica would discard them; open it as a writer to flush them, or give the replica another path", c.wc.path)
	}
	if rec == nil || rec.Bucket != c.wc.bucket || rec.Key != c.cfg.Key || rec.Image == "" {
		return false, nil
	}
	for _, side := range []string{"-wal", "-journal"} {
		if _, err := os.Stat(c.wc.path + side); err == nil {
			return false, nil // the file alone is not the database
		}
	}
	im, err := snapshot.FileImage(c.wc.path)
	if err != nil || hexSum(im.Checksum) != rec.Image {
		c.log.Info("bucketsqlite: replica's working copy does not match its record; restoring", "local", c.wc.path)
		return false, nil
	}
	r.baseETag, r.baseSHA, r.baseSeq, r.seq, r.hasLog, r.im = rec.ETag, rec.SHA256, rec.BaseSeq, rec.Seq, true, im
	r.lastBase, r.lastBaseSeq = rec.SHA256, rec.BaseSeq
	r.needHead = true
	return true, nil
}

// openReader opens one of a replica's pooled connections: read-only, so
// that a write fails with SQLite's "attempt to write a readonly database"
// (sqlite3.ErrReadonly), and in the working copy's rollback-journal mode.
func (c *database) openReader(params url.Values, pragmas []string) (driver.Conn, error) {
	p := maps.Clone(params)
	p.Set("mode", "ro")
	p.Del("_journal_mode") // the working copy is in rollback mode; a read-only connection cannot change it
	d := &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		for _, pragma := range pragmas {
			if _, err := conn.Exec("PRAGMA "+pragma, nil); err != nil {
				return fmt.Errorf("PRAGMA %s: %w", pragma, err)
			}
		}
		return nil
	}}
	return d.Open(snapshot.FileDSN(c.wc.path, p))
}

// closeReplica stops a replica and releases its working copy.
func (c *database) closeReplica() error {
	r := c.rep.Load()
	if r == nil {
		c.wc.release(true)
		return nil
	}
	err := r.close()
	c.wc.release(true)
	if err != nil {
		return c.wrap("close", err)
	}
	return nil
}
