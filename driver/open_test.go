//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/childproc"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Write, Close, open again with a fresh working copy: the rows are there;
// and an unchanged database costs no request when flushed.
func TestCloseThenReopen(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := mustOpen(t, tg.dsn("app.db", "flush_interval=0"))
		mustExec(t, db, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
		for i := range 10 {
			mustExec(t, db, "INSERT INTO notes(body) VALUES (?)", fmt.Sprint("note ", i))
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := tg.b.Stat(ctx, "app.db"); err != nil {
			t.Fatalf("no snapshot after Close: %v", err)
		}

		db = mustOpen(t, tg.dsn("app.db", "flush_interval=0"))
		if n := countRows(t, db, "notes"); n != 10 {
			t.Fatalf("after reopen: %d rows, want 10", n)
		}
		st, err := driver.GetStats(db)
		if err != nil || !st.Restored {
			t.Fatalf("stats after reopen: %+v, %v", st, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A child that writes, flushes, writes more and exits without Close leaves
// exactly the flushed state in the bucket.
func TestExitWithoutCloseKeepsFlushedState(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		// The child's working copy is persistent only so that the test
		// can clean it up; it is never reopened.
		dsn := tg.dsn("child.db", "flush_interval=0&local="+filepath.Join(t.TempDir(), "child.db"))
		runChild(t, dsn, "create insert:5 flush insert:3 exit")
		db := mustOpen(t, tg.dsn("child.db", "flush_interval=0"))
		defer db.Close()
		if n := countRows(t, db, "t"); n != 5 {
			t.Fatalf("after the child exited: %d rows, want exactly the 5 flushed", n)
		}
	})
}

// runChild runs script (see scriptMain) against dsn in a child process.
func runChild(t *testing.T, dsn, script string) string {
	t.Helper()
	out, err := childproc.Command("script", dsn, script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child done") {
		t.Fatalf("child %q: %v\n%s", script, err, out)
	}
	return string(out)
}

// scriptMain is a child process (see runChild): it runs a space-separated
// script of steps, args[1], on the DSN args[0]: create, insert:N, flush,
// close, exit (os.Exit without Close), import:N (replace the database with
// one of N rows through SQLite's backup API, which fires no commit hook),
// hook (replace the driver's commit hook through Raw, then insert a row).
func scriptMain(args []string) int {
	dsn, script := args[0], args[1]
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	next := 0
	for _, step := range strings.Fields(script) {
		op, arg, _ := strings.Cut(step, ":")
		switch op {
		case "create":
			_, err = db.Exec("CREATE TABLE IF NOT EXISTS t(x)")
		case "insert":
			var n int
			fmt.Sscan(arg, &n)
			for range n {
				if _, err = db.Exec("INSERT INTO t VALUES (?)", next); err != nil {
					break
				}
				next++
			}
		case "flush":
			_, err = driver.Flush(context.Background(), db)
		case "close":
			err = db.Close()
		case "exit":
			fmt.Println("child done")
			os.Exit(0)
		case "import":
			var n int
			fmt.Sscan(arg, &n)
			err = importRows(db, n)
		case "hook":
			err = replaceHookAndInsert(db)
		}
		if err != nil {
			fmt.Printf("%s: %v\n", step, err)
			return 2
		}
	}
	fmt.Println("child done")
	return 0
}

// A corrupt snapshot fails the first query with ErrCorrupt, and the object
// is untouched afterwards, also after Close.
func TestCorruptSnapshot(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		junk := []byte("SQLite format 3\x00 but not really: " + strings.Repeat("x", 5000))
		put, err := tg.b.Upload(ctx, "bad.db", strings.NewReader(string(junk)), int64(len(junk)), bucket.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		db := mustOpen(t, tg.dsn("bad.db", ""))
		_, err = db.Exec("CREATE TABLE t(x)")
		if !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("first query on a corrupt snapshot: %v; want ErrCorrupt", err)
		}
		if !strings.Contains(err.Error(), "bad.db") {
			t.Errorf("error does not name the snapshot: %v", err)
		}
		// Still corrupt on retry: a failed restore is never cached as success.
		if err := db.Ping(); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("retry: %v; want ErrCorrupt", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close after a failed restore: %v", err)
		}
		st, err := tg.b.Stat(ctx, "bad.db")
		if err != nil || st.ETag != put.ETag {
			t.Fatalf("corrupt snapshot was replaced: %+v %v", st, err)
		}
	})
}

// NewConnector takes a ready *s3.Client for what a DSN cannot carry.
func TestWithS3Client(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t, "")
	open := func() *sql.DB {
		cfg, err := driver.ParseDSN("s3://" + name + "/clients/app.db?flush_interval=0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := driver.NewConnector(cfg, driver.WithS3Client(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		return sql.OpenDB(c)
	}
	db := open()
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1), (2)")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open()
	defer db.Close()
	if n := countRows(t, db, "t"); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestFlushRejectsOtherDrivers(t *testing.T) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := driver.Flush(ctx, db); !errors.Is(err, driver.ErrNotBucketSQLite) {
		t.Fatalf("Flush on a plain sqlite3 db: %v", err)
	}
}

// Flush after Close says the database is closed, even when Close's final
// flush failed: it never reports success for data left in a working copy.
func TestFlushAfterClose(t *testing.T) {
	for _, dsn := range []string{"mem://closed/a.db?flush_interval=0", "mem://closed/never-used.db"} {
		db := mustOpen(t, dsn)
		if strings.Contains(dsn, "a.db") {
			mustExec(t, db, "CREATE TABLE t(x)")
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := driver.Flush(ctx, db); !errors.Is(err, driver.ErrClosed) {
			t.Fatalf("%s: Flush after Close = %v; want ErrClosed", dsn, err)
		}
		if _, err := driver.GetStats(db); err != nil {
			t.Fatalf("GetStats after Close: %v", err)
		}
	}
}
