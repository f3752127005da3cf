//go:build cgo

package snapshot

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// FileDSN returns a go-sqlite3 "file:" DSN for path with the given query
// parameters. The path is percent-encoded, so names with '?', '#', '%' or
// spaces open the file they name.
func FileDSN(path string, params url.Values) string {
	u := url.URL{Path: path}
	dsn := "file:" + u.EscapedPath()
	if q := params.Encode(); q != "" {
		dsn += "?" + q
	}
	return dsn
}

// openConn opens a raw connection of its own to the database at path.
func openConn(path string, params url.Values) (*sqlite3.SQLiteConn, error) {
	c, err := (&sqlite3.SQLiteDriver{}).Open(FileDSN(path, params))
	if err != nil {
		return nil, err
	}
	return c.(*sqlite3.SQLiteConn), nil
}

// backup copies the main database of src into dst with SQLite's online
// backup API (https://sqlite.org/backup.html), in one step. go-sqlite3
// reports SQLITE_BUSY and SQLITE_LOCKED as "not done, no error"; those are
// retried with a bounded exponential backoff until ctx ends.
func backup(ctx context.Context, dst, src *sqlite3.SQLiteConn) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := dst.Backup("main", src, "main")
	if err != nil {
		return fmt.Errorf("start backup: %w", err)
	}
	defer func() {
		if ferr := b.Finish(); ferr != nil && err == nil {
			err = fmt.Errorf("finish backup: %w", ferr)
		}
	}()
	return retryBusy(ctx, func() (bool, error) {
		done, err := b.Step(-1)
		if err != nil {
			return false, fmt.Errorf("backup step: %w", err)
		}
		return !done, nil
	})
}

// retryBusy calls try until it reports no busy database (another
// connection holding a lock that is needed), with a bounded exponential
// backoff, until ctx ends. It returns try's error.
func retryBusy(ctx context.Context, try func() (busy bool, err error)) error {
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		busy, err := try()
		if !busy {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("backup: database stayed busy: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// backupVersion backs up src into dst, as backup does, and returns src's
// data version in the same read transaction: the version of exactly the
// state copied. The transaction ends before backupVersion returns, unless
// src was already inside one of its own.
func backupVersion(ctx context.Context, dst, src *sqlite3.SQLiteConn) (_ int64, err error) {
	if src.AutoCommit() {
		if _, err := src.ExecContext(ctx, "BEGIN", nil); err != nil {
			return 0, fmt.Errorf("begin read transaction: %w", err)
		}
		defer func() {
			// Even when ctx is done: the read transaction must end.
			if _, rerr := src.ExecContext(context.Background(), "ROLLBACK", nil); rerr != nil && err == nil {
				err = fmt.Errorf("end read transaction: %w", rerr)
			}
		}()
	}
	// The first read of the transaction pins the state the backup copies.
	// In rollback-journal mode it waits for a writer's lock, as a backup
	// step would.
	var v int64
	err = retryBusy(ctx, func() (bool, error) {
		var err error
		v, err = DataVersion(ctx, src)
		return isBusy(err), err
	})
	if err != nil {
		return 0, err
	}
	return v, backup(ctx, dst, src)
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED: another
// connection holds a lock that is needed.
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// DataVersion returns conn's PRAGMA data_version
// (https://sqlite.org/pragma.html#pragma_data_version), which changes
// whenever another connection commits to the database. Compare it with a
// snapshot's File.DataVersion, taken on the same connection, to know
// whether the database changed since, at the cost of reading the WAL
// index (or, in rollback-journal mode, the file's header): no copy, no
// hash.
func DataVersion(ctx context.Context, conn *sqlite3.SQLiteConn) (int64, error) {
	rows, err := conn.QueryContext(ctx, "PRAGMA data_version", nil)
	if err != nil {
		return 0, fmt.Errorf("data version: %w", err)
	}
	defer rows.Close()
	vals := make([]driver.Value, 1)
	if err := rows.Next(vals); err != nil {
		return 0, fmt.Errorf("data version: %w", err)
	}
	v, ok := vals[0].(int64)
	if !ok {
		return 0, fmt.Errorf("data version: got %T", vals[0])
	}
	return v, nil
}

// check runs the integrity check c on conn and returns a description of the
// first problems found, or nil when the database is sound.
func check(ctx context.Context, conn *sqlite3.SQLiteConn, c Check) error {
	q := "PRAGMA integrity_check(20)"
	switch c {
	case CheckQuick:
		q = "PRAGMA quick_check(20)"
	case CheckNone:
		// Still prove it is SQLite: this reads the header and the schema.
		q = "SELECT count(*) FROM sqlite_schema"
	}
	rows, err := conn.QueryContext(ctx, q, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	var msgs []string
	vals := make([]driver.Value, 1)
	for {
		if err := rows.Next(vals); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if c == CheckNone {
			continue
		}
		s := fmt.Sprint(vals[0])
		if b, ok := vals[0].([]byte); ok {
			s = string(b)
		}
		msgs = append(msgs, s)
	}
	if c == CheckNone || (len(msgs) == 1 && msgs[0] == "ok") {
		return nil
	}
	if len(msgs) == 0 {
		return errors.New("integrity check returned nothing")
	}
	return fmt.Errorf("%s: %s", strings.Fields(q)[1], strings.Join(msgs, "; "))
}

// headerVersionOffset is where the SQLite header stores the file format
// write and read versions: 1 for rollback journal, 2 for WAL
// (https://sqlite.org/fileformat2.html#the_database_header).
const headerVersionOffset = 18

// setRollbackHeader rewrites a WAL database file's header to rollback
// (legacy) mode in place, so that whoever opens the file next sees a
// self-contained database that needs no -wal file. A file that is not in
// WAL mode, or too short to have a header, is left alone.
func setRollbackHeader(f *os.File) error {
	var v [2]byte
	if _, err := f.ReadAt(v[:], headerVersionOffset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	if v != [2]byte{2, 2} {
		return nil
	}
	_, err := f.WriteAt([]byte{1, 1}, headerVersionOffset)
	return err
}

// tempFile creates a private (0600) temp file in dir (os.TempDir() when
// empty) named after pattern, and locks it until it is closed, so that
// RemoveStaleTemp tells it from the temp file of a dead process.
func tempFile(dir, pattern string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	for attempt := 1; ; attempt++ {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		ok, err := lockTemp(f)
		if err == nil && ok {
			err = f.Chmod(0o600)
			if err == nil {
				return f, nil
			}
		}
		f.Close()
		if err != nil {
			os.Remove(f.Name())
			return nil, err
		}
		// A RemoveStaleTemp removed it before it was locked.
		if attempt == 3 {
			return nil, fmt.Errorf("temp file %s was removed as soon as it was created", f.Name())
		}
	}
}

// removeDB removes a database file and every SQLite side file beside it.
func removeDB(path string) {
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}

// absPath is path made absolute where possible, so that a temporary
// file beside it and the directory fsynced after a rename are the same
// directory whatever the working directory does meanwhile.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
