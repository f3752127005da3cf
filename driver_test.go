//go:build cgo

package bucketsqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// These tests use the driver as an application does:
// through database/sql with the driver's name and a DSN, and through
// sqlx. The driver's own tests, its options, faults, crashes and the
// network, are in package driver; the snapshot format's in package
// snapshot.

// A second sql.DB on the same database in one process shares it, as
// plain go-sqlite3 would (GORM's own tests, a separate migrations handle,
// a library that opens its own): both see every commit, each Close
// flushes what was committed, the last one releases the working copy.
// The same directory bucket spelled through a symbolic link is the same
// database; a DSN that disagrees on what cannot be shared is refused,
// naming the parameter.
func TestSameDatabaseTwiceShared(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	a, err := sql.Open("bucketsqlite", "file://"+dir+"/app.db?flush_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// Another spelling, and per-connection settings of its own.
	b, err := sql.Open("bucketsqlite", "file://"+link+"/app.db?flush_interval=0&_foreign_keys=1")
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer b.Close()
	if _, err := a.Exec("CREATE TABLE parent(id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec("CREATE TABLE child(p INTEGER REFERENCES parent(id))"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec("INSERT INTO child VALUES (7)"); err == nil {
		t.Fatal("the second handle's _foreign_keys=1 is not applied")
	}
	if _, err := a.Exec("INSERT INTO child VALUES (7)"); err != nil {
		t.Fatalf("the first handle has no foreign keys: %v", err)
	}
	var n int
	if err := b.QueryRowContext(ctx, "SELECT count(*) FROM child").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the second handle sees %d rows, %v; want the first's 1", n, err)
	}
	for _, bad := range []struct{ params, param string }{
		{"flush_interval=5s", "flush_interval"},
		{"flush_interval=0&keep_previous=false", "keep_previous"},
		{"flush_interval=0&_journal_mode=DELETE", "_journal_mode"},
	} {
		_, err := sql.Open("bucketsqlite", "file://"+dir+"/app.db?"+bad.params)
		var de *driver.DSNError
		if !errors.As(err, &de) || de.Param != bad.param {
			t.Errorf("a third Open with %s: %v, want a DSN error naming %s", bad.params, err, bad.param)
		}
	}
	// Closing one handle flushes, and the other goes on.
	if _, err := b.Exec("INSERT INTO parent VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close of the second handle: %v", err)
	}
	if got := bucketCount(t, dir, "parent"); got != 1 {
		t.Fatalf("after the second handle's Close the bucket has %d parents, want 1", got)
	}
	if _, err := a.Exec("INSERT INTO parent VALUES (2)"); err != nil {
		t.Fatalf("the first handle after the second closed: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := bucketCount(t, dir, "parent"); got != 2 {
		t.Fatalf("after the last Close the bucket has %d parents, want 2", got)
	}
	// Released: a new Open restores it afresh.
	c, err := sql.Open("bucketsqlite", "file://"+dir+"/app.db?flush_interval=5s")
	if err != nil {
		t.Fatalf("Open after the last Close: %v", err)
	}
	defer c.Close()
	if err := c.QueryRow("SELECT count(*) FROM parent").Scan(&n); err != nil || n != 2 {
		t.Fatalf("reopened: %d parents, %v", n, err)
	}
}

// bucketCount restores app.db from the directory bucket at dir and counts
// table's rows.
func bucketCount(t *testing.T, dir, table string) int {
	t.Helper()
	b, err := bucket.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "check.db")
	if _, err := snapshot.RestoreFile(context.Background(), b, "app.db", path, snapshot.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type note struct {
	ID   int64  `db:"id"`
	Body string `db:"body"`
}

func TestSQLX(t *testing.T) {
	db, err := sqlx.Open("bucketsqlite", "mem://sqlx/notes.db?flush_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	db.MustExec("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
	if _, err := db.NamedExec("INSERT INTO notes(body) VALUES (:body)", []note{{Body: "one"}, {Body: "two"}}); err != nil {
		t.Fatal(err)
	}
	tx := db.MustBegin()
	tx.MustExec("INSERT INTO notes(body) VALUES (?)", "three")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx = db.MustBegin()
	tx.MustExec("INSERT INTO notes(body) VALUES (?)", "rolled back")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var all []note
	if err := db.Select(&all, "SELECT id, body FROM notes ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].Body != "three" {
		t.Fatalf("Select: %+v", all)
	}
	var one note
	if err := db.Get(&one, "SELECT id, body FROM notes WHERE body = ?", "two"); err != nil || one.ID != 2 {
		t.Fatalf("Get: %+v %v", one, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sqlx.Open("bucketsqlite", "mem://sqlx/notes.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM notes"); err != nil || n != 3 {
		t.Fatalf("after reopen: %d notes, %v", n, err)
	}
}

// sql.Conn.Raw hands out go-sqlite3's own connection.
func TestRawConn(t *testing.T) {
	db, err := sql.Open("bucketsqlite", "mem://raw/app.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		if _, ok := dc.(*sqlite3.SQLiteConn); !ok {
			return fmt.Errorf("Raw gave %T", dc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
