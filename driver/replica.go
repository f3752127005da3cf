//go:build cgo

package driver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// DefaultRefreshInterval is how often a replica asks for the writer's next
// delta. One GET a second is 2.6 million requests a month, about $1.04 at
// S3's $0.0004 per 1,000 GETs, for changes visible within about a second
// of the writer's flush; see the README's cost table.
const DefaultRefreshInterval = time.Second

// headEvery is how many polls go by between HEADs of KEY while the log
// answers: a HEAD notices a base that replaced the log (a writer that
// switched to sync=full, or a database put back by hand) and compactions
// that deleted the replica's next delta between two polls, even when no
// delta is coming. That HEAD takes the place of the poll's GET, so a
// replica makes one request per interval. A HEAD is also made, beside
// the GET, after a failed or late poll, and it is the poll itself when
// the base has no log.
const headEvery = 60

// ErrNotReplica is returned by Refresh for a database that is not a read
// replica (replica=true).
var ErrNotReplica = errors.New("bucketsqlite: not a read replica (replica=true)")

// replica follows a writer's delta log into the working copy, which its
// readers query read-only. A refresh downloads and checks what is new
// with no lock held, then writes it into the file under an exclusive
// SQLite lock (see applier): every query sees one whole flushed state.
type replica struct {
	b        bucket.Bucket
	key      string
	wc       *workingCopy
	log      *slog.Logger
	check    snapshot.Check
	interval time.Duration
	ap       *applier

	// sem serializes refreshes; a channel so that waiting honours ctx.
	sem chan struct{}
	// What the working copy holds, written with sem held.
	baseETag, baseSHA string
	baseSeq, seq      uint64
	hasLog            bool
	im                *snapshot.Image // nil: unknown, the next refresh restores
	polls             int             // since the last HEAD of KEY
	needHead          bool
	rebaseAfter       time.Time // no rebase before, after one failed with rebaseErr
	// lastBase and lastBaseSeq are the base the last delta applied
	// follows (Delta.Base, BaseSeq): a new base that is it is a
	// compaction of the replica's own log.
	lastBase    string
	lastBaseSeq uint64
	// pending is a new base seen at KEY that nothing proved yet to be a
	// compaction of the replica's log; the first delta that follows it
	// and chains does.
	pending   *baseRef
	rebaseErr error
	lastPoll  time.Time // the last poll that answered
	closed    bool

	mu        sync.Mutex
	stats     Stats
	loggedErr string

	stopLoop context.CancelFunc
	loopDone chan struct{}
}

// Refresh makes the read replica db catch up with the bucket now: it asks
// for the writer's next deltas, applies them, and restores a new base if
// the log moved on without it. It returns the refresh's error (the replica
// then stays on its last complete state). db must be a replica
// (replica=true): another database is ErrNotReplica. A replica that has
// not opened a connection yet is restored first.
func Refresh(ctx context.Context, db *sql.DB) error {
	c, err := connectorOf(db)
	if err != nil {
		return err
	}
	return c.Refresh(ctx)
}

// Refresh is the package-level Refresh for this connector's database.
func (c *Connector) Refresh(ctx context.Context) error {
	d := c.db
	if !d.cfg.Replica {
		return fmt.Errorf("%w: %s", ErrNotReplica, d.where)
	}
	if err := d.ensureReady(ctx); err != nil {
		return err
	}
	r := d.rep.Load()
	if r == nil {
		return ErrClosed
	}
	if err := r.refresh(ctx); err != nil {
		return d.wrap("refresh", err)
	}
	return nil
}

func (r *replica) lock(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the refresh in progress: %w", context.Cause(ctx))
	}
}

func (r *replica) unlock() { <-r.sem }

// refresh is the one refresh path: periodic and explicit.
func (r *replica) refresh(ctx context.Context) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	if r.closed {
		return ErrClosed
	}
	err := r.refreshLocked(ctx)
	r.mu.Lock()
	r.stats.Refreshes++
	if err != nil {
		r.stats.RefreshFailures++
		r.stats.LastError = err
	} else {
		r.stats.LastError = nil
		r.stats.LastRefresh = time.Now()
	}
	r.fillStats()
	logged := r.loggedErr
	if err == nil {
		r.loggedErr = ""
	} else {
		r.loggedErr = err.Error()
	}
	r.mu.Unlock()
	switch {
	case err != nil && err.Error() != logged:
		// Once per distinct error: a replica that cannot refresh
		// would otherwise log every second.
		r.log.Error("bucketsqlite: replica refresh failed; queries see the last complete state", "seq", r.seq, "err", err)
	case err == nil && logged != "":
		r.log.Info("bucketsqlite: replica refreshes again", "seq", r.seq)
	}
	return err
}

func (r *replica) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// fillStats copies the state into the stats; mu and sem are held.
func (r *replica) fillStats() {
	r.stats.Seq, r.stats.ETag, r.stats.LastHash = r.seq, r.baseETag, r.baseSHA
}

// Stats returns the replica's statistics.
func (r *replica) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Replica = true
	if !st.WriterFlush.IsZero() {
		st.Lag = time.Since(st.WriterFlush)
	}
	return st
}

// loop refreshes every interval until ctx is cancelled.
func (r *replica) loop(ctx context.Context) {
	defer close(r.loopDone)
	if r.interval <= 0 {
		return
	}
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A poll that hangs gives up long before the next few are due.
		rctx, cancel := context.WithTimeout(ctx, max(10*r.interval, 30*time.Second))
		r.refresh(rctx)
		cancel()
	}
}

// start records the restored state and starts the loop.
func (r *replica) start() {
	r.mu.Lock()
	r.fillStats()
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r.stopLoop, r.loopDone = cancel, make(chan struct{})
	go r.loop(ctx)
}

// close stops the loop and closes the applier. Pooled readers still in
// use keep working on the file as it is.
func (r *replica) close() error {
	r.stopLoop()
	<-r.loopDone
	r.sem <- struct{}{}
	defer r.unlock()
	r.closed = true
	return r.ap.close()
}

// isBusy reports SQLite's SQLITE_BUSY.
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrBusy
}
