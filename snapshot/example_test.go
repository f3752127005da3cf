//go:build cgo

package snapshot_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// makeDB writes a SQLite file at path holding one row, v.
func makeDB(path, v string) {
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t(v TEXT); INSERT INTO t VALUES (?)", v); err != nil {
		log.Fatal(err)
	}
}

// readDB returns the row of the SQLite file at path.
func readDB(path string) string {
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT v FROM t").Scan(&v); err != nil {
		log.Fatal(err)
	}
	return v
}

// Push makes local SQLite files the database in a bucket; with a
// retention, the base it replaces is archived, and RestoreFile with At
// brings back the state as of a time before the second push.
func ExamplePush() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b := bucket.NewMemory()
	first, second := filepath.Join(dir, "first.db"), filepath.Join(dir, "second.db")
	makeDB(first, "monday")
	makeDB(second, "tuesday")

	if _, err := snapshot.Push(ctx, b, "app.db", first, snapshot.PushOptions{}); err != nil {
		log.Fatal(err)
	}
	between := time.Now()
	_, err = snapshot.Push(ctx, b, "app.db", second, snapshot.PushOptions{})
	fmt.Println("push over a database:", err != nil)
	res, err := snapshot.Push(ctx, b, "app.db", second, snapshot.PushOptions{Force: true, KeepPrevious: true, Retention: 72 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("archived:", res.Archived)

	now, then := filepath.Join(dir, "now.db"), filepath.Join(dir, "then.db")
	if _, err := snapshot.RestoreFile(ctx, b, "app.db", now, snapshot.RestoreOptions{}); err != nil {
		log.Fatal(err)
	}
	if _, err := snapshot.RestoreFile(ctx, b, "app.db", then, snapshot.RestoreOptions{At: between}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("now:", readDB(now))
	fmt.Println("then:", readDB(then))
	// Output:
	// push over a database: true
	// archived: app.db.log/0000000000000000.base
	// now: tuesday
	// then: monday
}
