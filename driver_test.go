//go:build cgo

package bucketsqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/driver"
)

// These tests use the driver as an application does:
// through database/sql with the driver's name and a DSN, and through
// sqlx. The driver's own tests, its options, faults, crashes and the
// network, are in package driver; the snapshot format's in package
// snapshot.

// A second sql.DB on the same snapshot in one process is refused.
func TestSameKeyTwiceRefused(t *testing.T) {
	dsn := "mem://twice/app.db"
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := sql.Open("bucketsqlite", dsn); !errors.Is(err, driver.ErrInUse) {
		t.Fatalf("second Open: %v; want ErrInUse", err)
	}
	db.Close()
	db2, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db2.Close()
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
