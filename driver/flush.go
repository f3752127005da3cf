//go:build cgo

package driver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// FlushResult is the outcome of a flush.
type FlushResult struct {
	snapshot.Result
	// Idle reports that nothing was committed since the last flush, so the
	// flush did nothing at all: no backup, no hash, no request.
	Idle bool
}

// Stats are a database's flush statistics, for dashboards and health
// checks.
type Stats struct {
	// Restored reports that the first connection restored a snapshot from
	// the bucket (false: a new database, or a persistent working copy
	// that was already current).
	Restored bool
	// RestoredBytes is the size of the restored snapshot.
	RestoredBytes int64
	// RestoreDuration is how long the restore (or reconciliation) took.
	RestoreDuration time.Duration
	// Flushes counts flush attempts: periodic, explicit and final.
	Flushes int64
	// Uploads counts flushes that uploaded a snapshot.
	Uploads int64
	// Skips counts flushes that uploaded nothing because nothing changed
	// (Idle, or an identical snapshot hash).
	Skips int64
	// Failures counts flushes that returned an error.
	Failures int64
	// BytesUploaded is the total size of uploaded snapshots.
	BytesUploaded int64
	// LastFlush is when the last successful flush (upload or skip) ended.
	LastFlush time.Time
	// LastUpload is when the last upload ended.
	LastUpload time.Time
	// LastHash is the SHA-256 of the snapshot the bucket holds.
	LastHash string
	// ETag is the ETag of the snapshot the bucket holds, as last seen.
	ETag string
	// LastError is the last flush's error; nil after a success.
	LastError error
	// Conflicted reports that a flush found the snapshot changed by another
	// writer; periodic flushing stops until the database is reopened.
	Conflicted bool
	// LocalPath is the working copy's path.
	LocalPath string
}

// Flush flushes db now and reports what it did. db must have been opened
// with this driver (sql.Open("bucketsqlite", ...) or
// sql.OpenDB(NewConnector(...))). A database that has not opened a
// connection yet has nothing to flush and reports Idle.
func Flush(ctx context.Context, db *sql.DB) (FlushResult, error) {
	c, err := connectorOf(db)
	if err != nil {
		return FlushResult{}, err
	}
	return c.Flush(ctx)
}

// GetStats returns db's flush statistics. db must have been opened with
// this driver.
func GetStats(db *sql.DB) (Stats, error) {
	c, err := connectorOf(db)
	if err != nil {
		return Stats{}, err
	}
	return c.Stats(), nil
}

// ErrNotBucketSQLite means a *sql.DB given to Flush or GetStats was not
// opened with this driver.
var ErrNotBucketSQLite = errors.New("bucketsqlite: not a bucketsqlite database")

func connectorOf(db *sql.DB) (*Connector, error) {
	if d, ok := db.Driver().(*boundDriver); ok {
		return d.c, nil
	}
	return nil, ErrNotBucketSQLite
}

// Flush flushes the database now; see the package-level Flush. After
// Close it returns ErrClosed: a failed final flush is not retried behind
// the caller's back, and its working copy stays where Close said.
func (c *Connector) Flush(ctx context.Context) (FlushResult, error) {
	return c.flush(ctx, "explicit")
}

// Stats returns the connector's flush statistics. They stay readable
// after Close, and then include the final flush.
func (c *Connector) Stats() Stats {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	return c.stats
}

// flush is the one flush path: periodic, explicit and final flushes are
// serialized by flushMu.
func (c *Connector) flush(ctx context.Context, why string) (FlushResult, error) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	if c.finished {
		return FlushResult{}, ErrClosed
	}
	if c.flushConn == nil {
		// Never restored: there is nothing to flush, and an empty database
		// must never be uploaded.
		return FlushResult{Idle: true}, nil
	}
	c.stats.Flushes++
	if c.idle(ctx) {
		c.stats.Skips++
		c.stats.LastFlush = time.Now()
		c.stats.LastError = nil
		return FlushResult{Result: snapshot.Result{SnapshotHash: c.lastHash, ETag: c.etag}, Idle: true}, nil
	}
	res, mark, err := c.flushLocked(ctx)
	if err != nil {
		if res.SnapshotHash != c.lastHash {
			c.unconfirmed = addHash(c.unconfirmed, res.SnapshotHash)
		}
		c.stats.Failures++
		c.stats.LastError = err
		if errors.Is(err, snapshot.ErrConflict) {
			c.conflicted, c.stats.Conflicted = true, true
		}
		c.log.Error("bucketsqlite: flush failed", "why", why, "err", err)
		return FlushResult{Result: res}, err
	}
	c.etag, c.lastHash, c.flushedVersion, c.mustFlush = res.ETag, res.SnapshotHash, mark.version, false
	c.unconfirmed = nil
	c.stats.LastFlush = time.Now()
	c.stats.LastError = nil
	c.stats.LastHash, c.stats.ETag = res.SnapshotHash, res.ETag
	if res.Uploaded {
		c.stats.Uploads++
		c.stats.BytesUploaded += res.BytesWritten
		c.stats.LastUpload = c.stats.LastFlush
		c.log.Info("bucketsqlite: flushed", "why", why, "bytes", res.BytesWritten, "sha256", res.SnapshotHash)
	} else {
		c.stats.Skips++
		c.log.Debug("bucketsqlite: flush skipped, snapshot unchanged", "why", why)
	}
	if err := c.recordSynced(res, mark.commits); err != nil {
		c.log.Warn("bucketsqlite: cannot record sync state", "err", err)
	}
	return FlushResult{Result: res}, nil
}

// idle reports, for a flush, that nothing was committed since the last
// one: flushConn's data version is the one of the snapshot the bucket
// holds. It reads the WAL index (in rollback-journal mode, the file's
// header), whatever the database's size; on an error it reports false,
// and the flush finds the error itself.
func (c *Connector) idle(ctx context.Context) bool {
	if c.mustFlush {
		return false
	}
	v, err := snapshot.DataVersion(context.WithoutCancel(ctx), c.flushConn)
	return err == nil && v == c.flushedVersion
}

// flushMark is what a flushed snapshot is known to include.
type flushMark struct {
	version int64  // flushConn's data version in the snapshot
	commits uint64 // persistent working copy: the commits counted up to it are in it
}

// flushLocked takes and publishes a snapshot, and says what it includes.
func (c *Connector) flushLocked(ctx context.Context) (snapshot.Result, flushMark, error) {
	var mark flushMark
	if c.persist {
		n, err := c.barrier(ctx)
		if err != nil {
			return snapshot.Result{}, mark, fmt.Errorf("bucketsqlite: flush %s: %w", c.where(), err)
		}
		mark.commits = n
	}
	key := c.cfg.Key
	f, err := snapshot.Take(ctx, c.flushConn, filepath.Dir(c.local))
	if err != nil {
		return snapshot.Result{}, mark, fmt.Errorf("bucketsqlite: flush %s: %w", c.where(), &snapshot.Error{Op: "flush", Key: key, Err: err})
	}
	defer f.Remove()
	mark.version = f.DataVersion
	if f.Hash != c.lastHash {
		// Record the upload before making it, so that a restart finds
		// it ours should it land and the process stop before it returns.
		if err := c.recordPending(f.Hash); err != nil {
			return snapshot.Result{SnapshotHash: f.Hash, Size: f.Size}, mark, fmt.Errorf("bucketsqlite: flush %s: %w", c.where(), err)
		}
	}
	res, err := snapshot.Publish(ctx, f, c.b, key, snapshot.FlushOptions{
		KeepPrevious: c.cfg.KeepPrevious,
		LastHash:     c.lastHash,
		IfMatch:      c.etag,
		Unconfirmed:  c.unconfirmed,
	})
	if err != nil {
		return res, mark, fmt.Errorf("bucketsqlite: flush %s: %w", c.where(), err)
	}
	return res, mark, nil
}

// recordPending adds hash to the sync state's pending uploads, on disk for
// a persistent working copy.
func (c *Connector) recordPending(hash string) error {
	c.dirtyMu.Lock()
	defer c.dirtyMu.Unlock()
	c.synced.Pending = addHash(c.synced.Pending, hash)
	if !c.persist {
		return nil
	}
	st := c.synced
	st.Dirty = c.dirtyOnDisk
	return writeState(c.local, st)
}

// barrier returns a commit count that every later snapshot includes, for
// the dirty flag of a persistent working copy. A commit hook runs before
// its commit lands, so the count alone could include a commit still in
// flight; holding the write lock for an instant (BEGIN IMMEDIATE) waits
// for it to land.
func (c *Connector) barrier(ctx context.Context) (uint64, error) {
	if _, err := c.flushConn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return 0, fmt.Errorf("wait for writers: %w", err)
	}
	n := c.commits.Load()
	if _, err := c.flushConn.ExecContext(context.Background(), "ROLLBACK", nil); err != nil {
		return 0, fmt.Errorf("wait for writers: %w", err)
	}
	return n, nil
}

// recordSynced notes what the bucket now holds, and for a persistent
// working copy writes it beside the file, dirty unless every commit made
// it into the snapshot.
func (c *Connector) recordSynced(res snapshot.Result, n0 uint64) error {
	c.dirtyMu.Lock()
	defer c.dirtyMu.Unlock()
	c.synced.ETag, c.synced.SHA256, c.synced.Pending = res.ETag, res.SnapshotHash, nil
	if !c.persist {
		return nil
	}
	c.dirtyMarked.Store(false) // from here on, commits wait for the record
	st := c.synced
	st.Dirty = c.commits.Load() != n0
	if err := writeState(c.local, st); err != nil {
		c.dirtyOnDisk = true // unknown: let the next commit rewrite it
		c.dirtyMarked.Store(true)
		return err
	}
	c.dirtyOnDisk = st.Dirty
	c.dirtyMarked.Store(st.Dirty)
	return nil
}

// startLoop starts the periodic flush loop, if there is one.
func (c *Connector) startLoop() {
	c.stop = make(chan struct{})
	c.kick = make(chan struct{}, 1)
	c.loopDone = make(chan struct{})
	c.flushMu.Lock()
	pending := c.mustFlush
	c.flushMu.Unlock()
	if pending {
		c.kick <- struct{}{}
	}
	go c.loop()
}

func (c *Connector) loop() {
	defer close(c.loopDone)
	var tick <-chan time.Time
	if c.cfg.FlushInterval > 0 {
		t := time.NewTicker(c.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		why := "periodic"
		select {
		case <-c.stop:
			return
		case <-tick:
		case <-c.kick:
			why = "pending"
		}
		c.flushMu.Lock()
		conflicted := c.conflicted
		c.flushMu.Unlock()
		if conflicted {
			continue // every try would cost requests and fail the same way
		}
		ctx, cancel := c.flushContext()
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		c.flush(ctx, why)
		cancel()
	}
}

func (c *Connector) flushContext() (context.Context, context.CancelFunc) {
	if c.cfg.FlushTimeout > 0 {
		return context.WithTimeout(context.Background(), c.cfg.FlushTimeout)
	}
	return context.WithCancel(context.Background())
}

// Close stops the flush loop, runs the final flush and returns its error.
// database/sql calls it from DB.Close, after closing idle connections; it
// does not wait for connections still in use, so the final flush holds
// what was committed when it ran. If the final flush fails, the working
// copy is kept and the error names its path. A connector that never
// restored never flushes. Close is idempotent.
func (c *Connector) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Connector) close() error {
	defer release(c.id)
	c.sem <- struct{}{}
	c.closed = true
	ready := c.ready
	<-c.sem
	if !ready {
		c.flushMu.Lock()
		c.finished = true
		c.flushMu.Unlock()
		c.cleanup(true)
		return nil
	}
	close(c.stop)
	<-c.loopDone
	ctx, cancel := c.flushContext()
	defer cancel()
	_, err := c.flush(ctx, "close")
	c.flushMu.Lock()
	cerr := c.flushConn.Close()
	c.flushConn, c.finished = nil, true
	c.flushMu.Unlock()
	if err != nil {
		c.cleanup(false)
		return fmt.Errorf("%w; every committed write is kept in the working copy at %s", err, c.local)
	}
	c.cleanup(true)
	if cerr != nil {
		return fmt.Errorf("bucketsqlite: close working copy: %w", cerr)
	}
	return nil
}

// cleanup releases the working copy's lock and, when the working copy is
// temporary and removeTemp is set, removes it.
func (c *Connector) cleanup(removeTemp bool) {
	if c.lockFile != nil {
		c.lockFile.Close()
		c.lockFile = nil
	}
	if removeTemp && c.tempDir != "" {
		os.RemoveAll(c.tempDir)
	}
}
