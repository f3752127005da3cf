//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// workingCopy is the local SQLite file a database runs on: where it lives
// (a persistent local= path, or a private temp directory), the lock that
// keeps a second user off it, the go-sqlite3 DSNs that open it, and, for a
// persistent one, the sync record beside it with the dirty flag that tells
// a restart whether the file is ahead of the bucket.
type workingCopy struct {
	path    string
	tempDir string // private temp dir holding path, when not persistent
	persist bool
	params  url.Values // go-sqlite3 parameters of every connection
	log     *slog.Logger
	lock    *fsutil.FileLock

	// bucket and key identify the database in the sync record.
	bucket, key string

	// commits counts commits on every pooled connection of a persistent
	// working copy (commit hook), for its dirty flag on disk. A temporary
	// working copy has no commit hook.
	commits atomic.Uint64

	// mu orders the record on disk against commits and flushes. It is
	// never held across I/O other than writing the small record file.
	mu     sync.Mutex
	record syncState // as on disk; Dirty set before the first commit after a sync
	// dirtyMarked mirrors record.Dirty for the commit hook: while it is
	// set the record on disk already says dirty, and a commit takes no
	// lock. synced clears it before reading the commit count, so a commit
	// that saw it set is one that count includes.
	dirtyMarked atomic.Bool
}

func newWorkingCopy(cfg *Config, bucketName string, log *slog.Logger) (*workingCopy, error) {
	w := &workingCopy{
		params: cfg.sqliteParams(),
		log:    log,
		bucket: bucketName,
		key:    cfg.Key,
	}
	if cfg.Local != "" {
		abs, err := filepath.Abs(cfg.Local)
		if err != nil {
			return nil, dsnErr("local", "%v", err)
		}
		w.path, w.persist = abs, true
	}
	return w, nil
}

// tempPrefix names the private directories of temporary working copies.
const tempPrefix = "bucketsqlite-"

// prepare settles where the working copy lives and locks it.
func (w *workingCopy) prepare() error {
	if w.lock != nil {
		return nil
	}
	if !w.persist {
		removeStaleTempDirs(os.TempDir(), w.log)
		dir, err := os.MkdirTemp("", tempPrefix+"*")
		if err != nil {
			return fmt.Errorf("create working directory: %w", err)
		}
		w.tempDir, w.path = dir, filepath.Join(dir, "db.sqlite")
	} else if err := os.MkdirAll(filepath.Dir(w.path), 0o700); err != nil {
		return fmt.Errorf("working copy directory: %w", err)
	} else if n, _ := snapshot.RemoveStaleTemp(filepath.Dir(w.path)); n > 0 {
		// Snapshots and restores of a process killed mid-way.
		w.log.Info("bucketsqlite: removed temp files left by a killed process", "dir", filepath.Dir(w.path), "files", n)
	}
	lock := lockLocal
	if w.tempDir != "" {
		lock = lockFresh
	}
	f, err := lock(w.path)
	if err != nil {
		if w.tempDir != "" {
			os.RemoveAll(w.tempDir)
			w.tempDir = ""
		}
		return fmt.Errorf("lock working copy: %w", err)
	}
	w.lock = f
	return nil
}

// exists reports whether the working copy's file exists.
func (w *workingCopy) exists() bool {
	_, err := os.Stat(w.path)
	return err == nil
}

// facts returns what is known about the working copy without reading it.
func (w *workingCopy) facts() localFacts {
	l := localFacts{Exists: w.exists()}
	if l.Exists && w.persist {
		l.Record = readState(w.path)
	}
	return l
}

// removeSideFiles removes -wal, -shm and -journal files left beside a
// working copy that does not exist: SQLite would apply them to the new
// database.
func (w *workingCopy) removeSideFiles() error {
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(w.path + side); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// create makes a new, empty working copy private before SQLite does (its
// -wal and -shm files take the database file's permissions).
func (w *workingCopy) create() {
	if f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
}

// open returns a new pooled connection with the go-sqlite3 parameters
// params, running pragmas ("NAME=VALUE") on it. It never creates the file:
// a working copy deleted while open is an error, not a new empty database.
func (w *workingCopy) open(params url.Values, pragmas []string) (driver.Conn, error) {
	p := maps.Clone(params)
	p.Set("mode", "rw")
	d := &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		if w.persist {
			// A flush learns whether anything was committed from the
			// data version: commits cost nothing extra. Only a
			// persistent working copy hooks them, to record on disk that
			// it is ahead of the bucket before the first one lands.
			conn.RegisterCommitHook(w.onCommit)
		}
		for _, pragma := range pragmas {
			if _, err := conn.Exec("PRAGMA "+pragma, nil); err != nil {
				return fmt.Errorf("PRAGMA %s: %w", pragma, err)
			}
		}
		return nil
	}}
	return d.Open(snapshot.FileDSN(w.path, p))
}

// openFlushConn returns the flush connection, which has no commit hook.
func (w *workingCopy) openFlushConn() (*sqlite3.SQLiteConn, error) {
	p := maps.Clone(w.params)
	p.Set("mode", "rw")
	conn, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(w.path, p))
	if err != nil {
		return nil, err
	}
	return conn.(*sqlite3.SQLiteConn), nil
}

// hash hashes a snapshot of the working copy as a flush would.
func (w *workingCopy) hash(ctx context.Context) (hash string, err error) {
	err = w.snapshot(ctx, func(f *snapshot.File) error { hash = f.Hash; return nil })
	return hash, err
}

// image returns the Image of a snapshot of the working copy (sync=log).
func (w *workingCopy) image(ctx context.Context) (im *snapshot.Image, err error) {
	err = w.snapshot(ctx, func(f *snapshot.File) (err error) { im, err = snapshot.FileImage(f.Path()); return err })
	return im, err
}

// snapshot takes a snapshot of the working copy, through a read-only
// connection of its own, and hands it to use before removing it.
func (w *workingCopy) snapshot(ctx context.Context, use func(*snapshot.File) error) error {
	conn, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(w.path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return err
	}
	defer conn.Close()
	f, err := snapshot.Take(ctx, conn.(*sqlite3.SQLiteConn), filepath.Dir(w.path))
	if err != nil {
		return err
	}
	defer f.Remove()
	return use(f)
}

// check runs PRAGMA quick_check on the working copy: a copy recovered from
// a crash must be sound before it can replace anything in the bucket.
func (w *workingCopy) check(ctx context.Context) error {
	c, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(w.path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := c.(*sqlite3.SQLiteConn).QueryContext(ctx, "PRAGMA quick_check(10)", nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	vals := make([]driver.Value, 1)
	for rows.Next(vals) == nil {
		if s := fmt.Sprint(vals[0]); s != "ok" {
			problems = append(problems, s)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: quick_check: %s", snapshot.ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// release unlocks the working copy and, when it is temporary and
// removeTemp is set, removes it.
func (w *workingCopy) release(removeTemp bool) {
	if w.lock != nil {
		w.lock.Unlock()
		w.lock = nil
	}
	if removeTemp && w.tempDir != "" {
		os.RemoveAll(w.tempDir)
	}
}

// removeStaleTempDirs removes the temporary working copies that processes
// of ours left in dir when they were killed: those whose lock no live
// process holds. A working copy still in use is locked and stays.
func removeStaleTempDirs(dir string, log *slog.Logger) {
	if !fsutil.ExcludesProcesses {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
	for _, d := range matches {
		db := filepath.Join(d, "db.sqlite")
		if _, err := os.Stat(lockPath(db)); err != nil {
			continue // not ours, or not locked yet by the process creating it
		}
		l, err := fsutil.TryLock(lockPath(db))
		if err != nil {
			continue
		}
		if err := os.RemoveAll(d); err == nil {
			log.Info("bucketsqlite: removed a temporary working copy left by a killed process", "dir", d)
		}
		l.Unlock()
	}
}

// dir is the working copy's directory, where snapshots are taken.
func (w *workingCopy) dir() string { return filepath.Dir(w.path) }
