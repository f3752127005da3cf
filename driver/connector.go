//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// ErrDiverged means the working copy holds writes that were never flushed
// while the snapshot in the bucket changed too. Neither side is touched:
// see the README's "Recovering from a conflict".
var ErrDiverged = errors.New("bucketsqlite: working copy and bucket snapshot have diverged")

// ErrClosed is returned by Connect and Flush after Close.
var ErrClosed = errors.New("bucketsqlite: database is closed")

// Connector is a bucketsqlite database: one snapshot in a bucket, one local
// working copy, a flush loop. database/sql opens every pooled connection
// through it. Make one with NewConnector and sql.OpenDB, or let sql.Open
// make one from a DSN.
type Connector struct {
	cfg    *Config
	b      bucket.Bucket
	log    *slog.Logger
	id     string
	sqlite *sqlite3.SQLiteDriver
	dsn    string // go-sqlite3 DSN of the working copy

	// sem guards the restore state below; a channel rather than a mutex so
	// that waiting honours the caller's ctx.
	sem      chan struct{}
	ready    bool
	closed   bool
	local    string // working copy path
	tempDir  string // private temp dir holding local, when not persistent
	lockFile *os.File
	persist  bool // local is persistent: track dirtiness on disk

	// commits counts commits on every pooled connection of a persistent
	// working copy (commit hook), for its dirty flag on disk. A temporary
	// working copy has no commit hook.
	commits atomic.Uint64

	// flushMu serializes flushes and guards the fields below it.
	flushMu   sync.Mutex
	flushConn *sqlite3.SQLiteConn
	etag      string
	lastHash  string
	// flushedVersion is flushConn's data version in the bucket's
	// snapshot: while flushConn still reports it, nothing was committed
	// since, and a flush has nothing to do.
	flushedVersion int64
	mustFlush      bool // working copy may be ahead of the bucket
	conflicted     bool
	// unconfirmed holds the hashes of the flushes that failed since the
	// last success: their uploads may have landed (FlushOptions.Unconfirmed).
	unconfirmed []string
	finished    bool // Close ran its final flush
	stats       Stats

	// dirtyMu orders the persisted dirty flag against flushes. It is never
	// held across I/O other than writing the small sync-state file, and
	// never taken before flushMu, so commits never wait for a flush.
	dirtyMu     sync.Mutex
	dirtyOnDisk bool
	// dirtyMarked mirrors dirtyOnDisk for the commit hook: while it is
	// set the state on disk already says dirty, and a commit takes no
	// lock. recordSynced clears it before reading the commit count, so a
	// commit that saw it set is one that count includes.
	dirtyMarked atomic.Bool
	synced      syncState // what the bucket holds, for the commit hook

	stop      chan struct{}
	kick      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var (
	_ driver.Connector = (*Connector)(nil)
)

// NewConnector returns a Connector for cfg, which it copies. It validates
// cfg and builds the bucket client, but makes no request: the snapshot is
// restored when the first connection is opened.
func NewConnector(cfg *Config, opts ...Option) (*Connector, error) {
	if cfg == nil {
		return nil, dsnErr("config", "nil *Config")
	}
	cfg = cfg.Clone()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	c := &Connector{
		cfg: cfg,
		log: o.logger,
		sem: make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("key", cfg.Key)
	b, id, err := openBucket(cfg, &o)
	if err != nil {
		return nil, err
	}
	c.b, c.id = b, id
	if cfg.Local != "" {
		abs, err := filepath.Abs(cfg.Local)
		if err != nil {
			return nil, dsnErr("local", "%v", err)
		}
		c.local, c.persist = abs, true
	}
	if err := acquire(c.id, c.where()); err != nil {
		return nil, err
	}
	// A flush learns whether anything was committed from the data
	// version (snapshot.DataVersion): commits themselves cost nothing
	// extra. Only a persistent working copy hooks them, to record on disk
	// that it is ahead of the bucket before the first one lands.
	c.sqlite = &sqlite3.SQLiteDriver{}
	if c.persist {
		c.sqlite.ConnectHook = func(conn *sqlite3.SQLiteConn) error {
			conn.RegisterCommitHook(c.onCommit)
			return nil
		}
	}
	return c, nil
}

// where names the snapshot for messages.
func (c *Connector) where() string {
	if c.cfg.location() == "" {
		return fmt.Sprintf("snapshot %q", c.cfg.Key)
	}
	return c.cfg.location() + "/" + c.cfg.Key
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
	conn, err := c.sqlite.Open(c.dsn)
	if err != nil {
		return nil, fmt.Errorf("bucketsqlite: open working copy %s: %w", c.local, err)
	}
	return conn, nil
}

func (c *Connector) lock(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Connector) unlock() { <-c.sem }

func (c *Connector) ensureReady(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	if c.closed {
		return ErrClosed
	}
	if c.ready {
		return nil
	}
	start := time.Now()
	if err := c.restore(ctx); err != nil {
		c.log.Error("bucketsqlite: restore failed", "err", err)
		return err
	}
	c.ready = true
	c.flushMu.Lock()
	c.stats.RestoreDuration = time.Since(start)
	c.flushMu.Unlock()
	c.startLoop()
	return nil
}

// prepareLocal settles where the working copy lives and locks it.
func (c *Connector) prepareLocal() error {
	if c.local == "" {
		dir, err := os.MkdirTemp("", "bucketsqlite-*")
		if err != nil {
			return fmt.Errorf("bucketsqlite: create working directory: %w", err)
		}
		c.tempDir = dir
		c.local = filepath.Join(dir, "db.sqlite")
	} else if err := os.MkdirAll(filepath.Dir(c.local), 0o700); err != nil {
		return fmt.Errorf("bucketsqlite: working copy directory: %w", err)
	}
	if c.persist && c.lockFile == nil {
		f, err := lockLocal(c.local)
		if err != nil {
			return fmt.Errorf("bucketsqlite: lock working copy: %w", err)
		}
		c.lockFile = f
	}
	c.dsn = snapshot.FileDSN(c.local, c.cfg.sqliteParams())
	return nil
}

func (c *Connector) restoreOptions() snapshot.RestoreOptions {
	return snapshot.RestoreOptions{Check: c.cfg.Check}
}

// restore reconciles the working copy with the bucket, then opens the
// flush connection. Nothing is lost on either side: a working copy with
// writes the bucket lacks is kept (and flushed), a bucket ahead of a clean
// working copy wins, and when both changed, ErrDiverged keeps both.
func (c *Connector) restore(ctx context.Context) error {
	if err := c.prepareLocal(); err != nil {
		return err
	}
	key := c.cfg.Key
	st := readState(c.local)
	if st != nil && (st.Bucket != c.cfg.location() || st.Key != key) {
		st = nil
	}
	_, statErr := os.Stat(c.local)
	localExists := statErr == nil
	var (
		etag, hash string
		mustFlush  bool
		restored   snapshot.Info
	)
	switch {
	case !localExists:
		for _, side := range []string{"-wal", "-shm", "-journal"} {
			os.Remove(c.local + side)
		}
		info, err := snapshot.RestoreFile(ctx, c.b, key, c.local, c.restoreOptions())
		if err != nil {
			return fmt.Errorf("bucketsqlite: restore %s: %w", c.where(), err)
		}
		restored, etag, hash = info, info.ETag, info.SnapshotHash
	case st != nil:
		attrs, err := c.b.Stat(ctx, key)
		switch {
		case errors.Is(err, bucket.ErrNotFound):
			c.log.Warn("bucketsqlite: the snapshot the working copy was synced with is gone; keeping the working copy and flushing it", "local", c.local)
			hash, mustFlush = st.SHA256, true
		case err != nil:
			return fmt.Errorf("bucketsqlite: restore %s: %w", c.where(), err)
		case attrs.ETag == st.ETag:
			etag, hash, mustFlush = st.ETag, st.SHA256, st.Dirty
		case attrs.Metadata[snapshot.MetaSHA256] != "" && slices.Contains(st.Pending, attrs.Metadata[snapshot.MetaSHA256]):
			// The working copy's own upload, which landed though the
			// process stopped (or the call failed) before recording it.
			// The working copy holds all of it and maybe more; the hash
			// stays unknown so that the next flush uploads even an
			// identical snapshot over one a faulty backend might have torn.
			c.log.Info("bucketsqlite: the bucket holds an upload of this working copy that was never confirmed; keeping the working copy and flushing it", "local", c.local)
			etag, mustFlush = attrs.ETag, true
		case st.Dirty:
			return fmt.Errorf("%w: working copy %s holds writes that were never flushed, and %s changed since it was last synced (ETag %s, now %s); both are kept",
				ErrDiverged, c.local, c.where(), st.ETag, attrs.ETag)
		default:
			info, err := snapshot.RestoreFile(ctx, c.b, key, c.local, c.restoreOptions())
			if err != nil {
				return fmt.Errorf("bucketsqlite: restore %s: %w", c.where(), err)
			}
			if !info.Found {
				return fmt.Errorf("bucketsqlite: restore %s: the snapshot disappeared during restore; try again", c.where())
			}
			restored, etag, hash = info, info.ETag, info.SnapshotHash
		}
	default:
		// A working copy with no record of what it was synced to.
		attrs, err := c.b.Stat(ctx, key)
		switch {
		case errors.Is(err, bucket.ErrNotFound):
			c.log.Info("bucketsqlite: adopting the existing working copy; the first flush creates the snapshot", "local", c.local)
			mustFlush = true
		case err != nil:
			return fmt.Errorf("bucketsqlite: restore %s: %w", c.where(), err)
		default:
			localHash, err := c.hashLocal(ctx)
			if err != nil {
				return err
			}
			if attrs.Metadata[snapshot.MetaSHA256] != localHash {
				return fmt.Errorf("%w: working copy %s has no sync record and differs from the snapshot at %s; both are kept",
					ErrDiverged, c.local, c.where())
			}
			etag, hash = attrs.ETag, localHash
		}
	}
	// A new database: create the file private before SQLite does (its
	// -wal and -shm files take the database file's permissions).
	if f, err := os.OpenFile(c.local, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	flushConn, err := (&sqlite3.SQLiteDriver{}).Open(c.dsn)
	if err != nil {
		return fmt.Errorf("bucketsqlite: open working copy %s: %w", c.local, err)
	}
	version, err := snapshot.DataVersion(ctx, flushConn.(*sqlite3.SQLiteConn))
	if err != nil {
		flushConn.Close()
		return fmt.Errorf("bucketsqlite: read working copy %s: %w", c.local, err)
	}
	synced := syncState{Bucket: c.cfg.location(), Key: key, ETag: etag, SHA256: hash}
	if c.persist {
		st := synced
		st.Dirty = mustFlush
		if err := writeState(c.local, st); err != nil {
			flushConn.Close()
			return fmt.Errorf("bucketsqlite: %w", err)
		}
	}
	c.dirtyMu.Lock()
	c.dirtyOnDisk, c.synced = mustFlush, synced
	c.dirtyMarked.Store(mustFlush)
	c.dirtyMu.Unlock()
	c.flushMu.Lock()
	c.flushConn = flushConn.(*sqlite3.SQLiteConn)
	c.etag, c.lastHash, c.mustFlush = etag, hash, mustFlush
	c.flushedVersion = version
	c.stats.Restored = restored.Found
	c.stats.RestoredBytes = restored.Size
	c.stats.ETag, c.stats.LastHash = etag, hash
	c.stats.LocalPath = c.local
	c.flushMu.Unlock()
	c.log.Info("bucketsqlite: ready", "restored", restored.Found, "bytes", restored.Size, "local", c.local, "pending_flush", mustFlush)
	return nil
}

// hashLocal hashes a snapshot of the working copy as Flush would.
func (c *Connector) hashLocal(ctx context.Context) (string, error) {
	conn, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(c.local, url.Values{"mode": {"ro"}}))
	if err != nil {
		return "", fmt.Errorf("bucketsqlite: open working copy %s: %w", c.local, err)
	}
	defer conn.Close()
	f, err := snapshot.Take(ctx, conn.(*sqlite3.SQLiteConn), filepath.Dir(c.local))
	if err != nil {
		return "", fmt.Errorf("bucketsqlite: read working copy %s: %w", c.local, err)
	}
	defer f.Remove()
	return f.Hash, nil
}

// onCommit is the commit hook of every pooled connection to a persistent
// working copy. It counts commits and records on disk that the working
// copy is ahead of the bucket before the first commit since a flush lands.
func (c *Connector) onCommit() int {
	c.commits.Add(1)
	if c.dirtyMarked.Load() {
		return 0
	}
	c.dirtyMu.Lock()
	defer c.dirtyMu.Unlock()
	if c.dirtyOnDisk {
		return 0
	}
	st := c.synced
	st.Dirty = true
	if err := writeState(c.local, st); err != nil {
		// Refuse the commit rather than lose track of it.
		c.log.Error("bucketsqlite: cannot record unflushed writes; refusing commit", "err", err)
		return 1
	}
	c.dirtyOnDisk = true
	c.dirtyMarked.Store(true)
	return 0
}
