//go:build cgo

package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// syncer ships a working copy to the bucket: the flush connection, the one
// record of what the bucket holds, the flushes (serialized, each bounded by
// its context) and the periodic loop. How a flush ships the database is
// its strategy's business (fullSnapshot today; a delta log fits beside it).
type syncer struct {
	b        bucket.Bucket
	key      string
	wc       *workingCopy
	log      *slog.Logger
	strategy strategy
	probe    *prober // nil: no probe
	interval time.Duration
	timeout  time.Duration

	// sem serializes flushes; a channel so that waiting honours ctx.
	sem chan struct{}
	// The fields below are written with sem held, and read with mu too.
	conn       *sqlite3.SQLiteConn
	remote     remoteState
	version    int64 // conn's data version in the bucket's snapshot
	mustFlush  bool  // the working copy may be ahead of the bucket
	conflicted bool
	closed     bool

	mu    sync.Mutex
	stats Stats

	stopLoop context.CancelFunc
	loopDone chan struct{}
}

// strategy is how a flush ships the working copy to the bucket.
type strategy interface {
	// flush ships what conn holds if it differs from remote, the
	// bucket's state, and returns the new state. Before an upload whose
	// hash the bucket may end up holding, it calls pending with that hash.
	flush(ctx context.Context, conn *sqlite3.SQLiteConn, remote remoteState, pending func(hash string) error) (shipped, error)
}

// shipped is what a flush did.
type shipped struct {
	result  snapshot.Result
	version int64 // conn's data version in what was shipped
	// With a delta log: the last delta, the base's sequence, and the
	// image checksum (hex) of the state the bucket now holds.
	seq, baseSeq uint64
	image        string
	// pending are the hashes of uploads that may have landed although
	// the flush succeeded (a failed compaction's base): the record keeps
	// them, so that a restart knows that base for its own.
	pending []string
}

func newSyncer(b bucket.Bucket, cfg *Config, wc *workingCopy, log *slog.Logger, probe bool) *syncer {
	var p *prober
	if probe {
		p = &prober{b: b, key: cfg.Key}
	}
	return &syncer{
		probe: p,
		b:     b, key: cfg.Key, wc: wc, log: log,
		strategy: &fullSnapshot{b: b, key: cfg.Key, keepPrevious: cfg.KeepPrevious, tempDir: wc.dir()},
		interval: cfg.FlushInterval,
		timeout:  cfg.FlushTimeout,
		sem:      make(chan struct{}, 1),
	}
}

// start takes over the flush connection and the reconciled state, and
// starts the loop.
func (s *syncer) start(conn *sqlite3.SQLiteConn, version int64, remote remoteState, dirty bool, restored snapshot.Info, took time.Duration) {
	s.mu.Lock()
	s.conn, s.version, s.remote, s.mustFlush = conn, version, remote, dirty
	s.stats.Restored, s.stats.RestoredBytes, s.stats.RestoreDuration = restored.Found, restored.Size, took
	s.stats.LocalPath = s.wc.path
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopLoop, s.loopDone = cancel, make(chan struct{})
	go s.loop(ctx, dirty)
}

func (s *syncer) lock(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the flush in progress: %w", context.Cause(ctx))
	}
}

func (s *syncer) unlock() { <-s.sem }

// Stats returns the statistics, derived from the record of what the
// bucket holds and the flush counters.
func (s *syncer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ETag, st.LastHash, st.Conflicted = s.remote.ETag, s.remote.SHA256, s.conflicted
	return st
}

// flush is the one flush path: periodic, explicit and final flushes.
func (s *syncer) flush(ctx context.Context, why string) (FlushResult, error) {
	if err := s.lock(ctx); err != nil {
		return FlushResult{}, err
	}
	defer s.unlock()
	if s.closed {
		return FlushResult{}, ErrClosed
	}
	s.count(func(st *Stats) { st.Flushes++ })
	if s.idle(ctx) {
		s.count(func(st *Stats) { st.Skips++; st.LastFlush = time.Now(); st.LastError = nil })
		return FlushResult{Result: snapshot.Result{SnapshotHash: s.remote.SHA256, ETag: s.remote.ETag}, Idle: true}, nil
	}
	if err := s.probe.check(ctx); err != nil {
		return s.failed(why, snapshot.Result{}, err)
	}
	var n0 uint64
	if s.wc.persist {
		n, err := barrier(ctx, s.conn, s.wc)
		if err != nil {
			return s.failed(why, snapshot.Result{}, err)
		}
		n0 = n
	}
	out, err := s.strategy.flush(ctx, s.conn, s.remote, func(hash string) error {
		return s.setRemote(func(r *remoteState) { r.Pending = addHash(r.Pending, hash) }, s.wc.pending)
	})
	if err != nil {
		return s.failed(why, out.result, err)
	}
	res := out.result
	s.mu.Lock()
	s.remote = remoteState{ETag: res.ETag, SHA256: res.SnapshotHash, PrevETag: res.PrevETag,
		Seq: out.seq, BaseSeq: out.baseSeq, Image: out.image, Pending: out.pending}
	s.version, s.mustFlush = out.version, false
	s.stats.LastFlush, s.stats.LastError = time.Now(), nil
	if res.Uploaded {
		s.stats.Uploads++
		s.stats.BytesUploaded += res.BytesWritten
		s.stats.LastUpload = s.stats.LastFlush
	} else {
		s.stats.Skips++
	}
	s.logStats()
	remote := s.remote
	s.mu.Unlock()
	if res.Uploaded {
		s.log.Info("bucketsqlite: flushed", "why", why, "bytes", res.BytesWritten, "sha256", res.SnapshotHash)
	} else {
		s.log.Debug("bucketsqlite: flush skipped, snapshot unchanged", "why", why)
	}
	if err := s.wc.synced(remote, n0); err != nil {
		s.log.Warn("bucketsqlite: cannot record sync state", "err", err)
	}
	return FlushResult{Result: res}, nil
}

// logStats copies a log strategy's figures into the stats; s.mu and sem
// are held.
func (s *syncer) logStats() {
	if ls, ok := s.strategy.(interface{ stats(*Stats) }); ok {
		ls.stats(&s.stats)
	}
}

// failed records a failed flush.
func (s *syncer) failed(why string, res snapshot.Result, err error) (FlushResult, error) {
	s.mu.Lock()
	if res.PrevETag != "" {
		s.remote.PrevETag = res.PrevETag
	}
	if res.SnapshotHash != "" && res.SnapshotHash != s.remote.SHA256 {
		// Its upload may have landed all the same.
		s.remote.Pending = addHash(s.remote.Pending, res.SnapshotHash)
	}
	s.stats.Failures++
	s.stats.LastError = err
	s.logStats()
	if errors.Is(err, snapshot.ErrConflict) {
		s.conflicted = true
	}
	s.mu.Unlock()
	s.log.Error("bucketsqlite: flush failed", "why", why, "err", err)
	return FlushResult{Result: res}, err
}

// setRemote changes the record of what the bucket holds and hands the new
// record to persist, keeping the change only if persist succeeds.
func (s *syncer) setRemote(change func(*remoteState), persist func(remoteState) error) error {
	s.mu.Lock()
	r := s.remote
	r.Pending = append([]string(nil), r.Pending...)
	change(&r)
	s.mu.Unlock()
	if err := persist(r); err != nil {
		return err
	}
	s.mu.Lock()
	s.remote = r
	s.mu.Unlock()
	return nil
}

func (s *syncer) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// idle reports, for a flush, that nothing was committed since the last
// one: the flush connection's data version is the one of the snapshot the
// bucket holds. It reads the WAL index (in rollback-journal mode, the
// file's header), whatever the database's size; on an error it reports
// false, and the flush finds the error itself.
func (s *syncer) idle(ctx context.Context) bool {
	if s.mustFlush {
		return false
	}
	v, err := snapshot.DataVersion(context.WithoutCancel(ctx), s.conn)
	return err == nil && v == s.version
}

// barrier returns a commit count that every later snapshot includes, for
// the dirty flag of a persistent working copy. A commit hook runs before
// its commit lands, so the count alone could include a commit still in
// flight; holding the write lock for an instant (BEGIN IMMEDIATE) waits
// for it to land.
func barrier(ctx context.Context, conn *sqlite3.SQLiteConn, wc *workingCopy) (uint64, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return 0, fmt.Errorf("wait for writers: %w", err)
	}
	n := wc.commits.Load()
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK", nil); err != nil {
		return 0, fmt.Errorf("wait for writers: %w", err)
	}
	return n, nil
}

// loop flushes every interval, and at once when the working copy started
// ahead of the bucket, until ctx is cancelled. A conflict stops it: every
// try would cost requests and fail the same way.
func (s *syncer) loop(ctx context.Context, pending bool) {
	defer close(s.loopDone)
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		why := "periodic"
		if pending {
			why, pending = "pending", false
		} else {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		s.mu.Lock()
		conflicted := s.conflicted
		s.mu.Unlock()
		if conflicted {
			continue
		}
		fctx, cancel := withTimeout(ctx, s.timeout)
		s.flush(fctx, why)
		cancel()
	}
}

// close stops the loop, runs the final flush within ctx and closes the
// flush connection. After it, flushes return ErrClosed.
func (s *syncer) close(ctx context.Context) error {
	s.stopLoop()
	<-s.loopDone
	_, err := s.flush(ctx, "close")
	if lerr := s.lock(ctx); lerr != nil {
		if err == nil {
			err = lerr
		}
		return err
	}
	defer s.unlock()
	s.closed = true
	if c, ok := s.strategy.(interface{ close() }); ok {
		c.close()
	}
	if cerr := s.conn.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close working copy: %w", cerr)
	}
	return err
}

// withTimeout bounds ctx by d; 0 means no bound.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}
