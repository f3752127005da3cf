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
	delay := time.Millisecond
	for {
		done, err := b.Step(-1)
		if err != nil {
			return fmt.Errorf("backup step: %w", err)
		}
		if done {
			return nil
		}
		// Busy or locked: another connection holds a lock we need.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("backup: database stayed busy: %w", ctx.Err())
		case <-t.C:
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
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
// empty) whose name starts with pattern's prefix.
func tempFile(dir, pattern string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// removeDB removes a database file and every SQLite side file beside it.
func removeDB(path string) {
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// sameDir is filepath.Dir, made absolute where possible.
func sameDir(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return filepath.Dir(path)
}
