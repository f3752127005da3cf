package bucketsqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

var ctx = context.Background()

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

// An unchanged database uploads nothing, counted at the bucket.
func TestIdleFlushCostsNoRequest(t *testing.T) {
	cb := newCounting(bucket.NewMemory())
	cfg := driver.NewConfig()
	cfg.Key, cfg.FlushInterval = "app.db", 0
	c, err := driver.NewConnector(cfg, driver.WithBucket(cb))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	res, err := driver.Flush(ctx, db)
	if err != nil || !res.Uploaded {
		t.Fatalf("first flush = %+v, %v", res, err)
	}
	before := cb.count()
	for range 5 {
		res, err := driver.Flush(ctx, db)
		if err != nil || res.Uploaded || !res.Idle || res.SnapshotHash == "" {
			t.Fatalf("idle flush = %+v, %v", res, err)
		}
	}
	// Reads commit nothing either.
	countRows(t, db, "t")
	if res, err := driver.Flush(ctx, db); err != nil || !res.Idle {
		t.Fatalf("flush after a read = %+v, %v", res, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := cb.count(); after != before {
		t.Fatalf("idle flushes and Close made %d bucket requests, want 0", after-before)
	}
	st := c.Stats()
	if st.Uploads != 1 || st.Skips < 6 {
		t.Fatalf("stats %+v", st)
	}
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

// TestMain lets the test binary double as the child process of the tests
// that need a process to exit (or be killed) without closing its database.
func TestMain(m *testing.M) {
	if script := os.Getenv("BUCKETSQLITE_CHILD"); script != "" {
		os.Exit(child(os.Getenv("BUCKETSQLITE_DSN"), script))
	}
	os.Exit(m.Run())
}

// runChild runs script (see child) against dsn in a child process.
func runChild(t *testing.T, dsn, script string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BUCKETSQLITE_CHILD="+script, "BUCKETSQLITE_DSN="+dsn)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child done") {
		t.Fatalf("child %q: %v\n%s", script, err, out)
	}
	return string(out)
}

// child runs a space-separated script of steps on dsn: create, insert:N,
// flush, close, exit (os.Exit without Close).
func child(dsn, script string) int {
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
		}
		if err != nil {
			fmt.Printf("%s: %v\n", step, err)
			return 2
		}
	}
	fmt.Println("child done")
	return 0
}

// The periodic loop uploads after writes and skips while idle.
func TestPeriodicFlush(t *testing.T) {
	cb := newCounting(bucket.NewMemory())
	cfg := driver.NewConfig()
	cfg.Key, cfg.FlushInterval = "loop.db", 20*time.Millisecond
	c, err := driver.NewConnector(cfg, driver.WithBucket(cb))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	waitFor(t, "a periodic upload", func() bool { return c.Stats().Uploads >= 1 })
	// Let the loop see that nothing changed, then count.
	waitFor(t, "an idle flush", func() bool { return c.Stats().Skips >= 1 })
	uploads, requests := c.Stats().Uploads, cb.count()
	flushes := c.Stats().Flushes
	waitFor(t, "five more idle flushes", func() bool { return c.Stats().Flushes >= flushes+5 })
	if st := c.Stats(); st.Uploads != uploads || cb.count() != requests {
		t.Fatalf("idle loop uploaded: uploads %d -> %d, requests %d -> %d", uploads, st.Uploads, requests, cb.count())
	}
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	waitFor(t, "an upload of the new write", func() bool { return c.Stats().Uploads > uploads })
	got := restoreCount(t, cb.Bucket, "loop.db", "t")
	if got != 2 {
		t.Fatalf("bucket has %d rows, want 2", got)
	}
}

// waitFor polls cond until it holds, failing after a generous bound. It
// asserts that something happens, not how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restoreCount restores key from b into a scratch database and counts the
// rows of table.
func restoreCount(t *testing.T, b bucket.Bucket, key, table string) int {
	t.Helper()
	db, err := restoreScratch(t, b, key)
	if err != nil {
		t.Fatalf("restore %s: %v", key, err)
	}
	return countRows(t, db, table)
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

// Eight goroutines write while flushes run; everything acknowledged before
// the final flush is in the bucket.
func TestConcurrentWritersAndFlushes(t *testing.T) {
	b := bucket.NewMemory()
	cfg := driver.NewConfig()
	cfg.Key, cfg.FlushInterval = "busy.db", 5*time.Millisecond
	c, err := driver.NewConnector(cfg, driver.WithBucket(b))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	mustExec(t, db, "CREATE TABLE t(w INTEGER, i INTEGER)")
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := db.Exec("INSERT INTO t VALUES (?, ?)", w, i); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if i%25 == 0 {
					if _, err := driver.Flush(ctx, db); err != nil {
						t.Errorf("flush: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := restoreCount(t, b, "busy.db", "t"); n != writers*each {
		t.Fatalf("bucket has %d rows, want %d", n, writers*each)
	}
	if st := c.Stats(); st.Uploads < 2 {
		t.Fatalf("expected several uploads while writing, stats %+v", st)
	}
}

// Two writers on one key: the second flush conflicts, nothing acknowledged
// is lost, and the winner's snapshot is intact.
func TestTwoWritersConflict(t *testing.T) {
	root := t.TempDir()
	open := func() (*sql.DB, *driver.Connector) {
		// Two Dir values on one root: as two processes would see it.
		b, err := bucket.NewDir(root)
		if err != nil {
			t.Fatal(err)
		}
		cfg := driver.NewConfig()
		cfg.Key, cfg.FlushInterval = "shared.db", 0
		c, err := driver.NewConnector(cfg, driver.WithBucket(b))
		if err != nil {
			t.Fatal(err)
		}
		return sql.OpenDB(c), c
	}
	a, ca := open()
	mustExec(t, a, "CREATE TABLE t(who TEXT)")
	mustExec(t, a, "INSERT INTO t VALUES ('a1')")
	if _, err := driver.Flush(ctx, a); err != nil {
		t.Fatal(err)
	}
	b2, _ := open()
	mustExec(t, b2, "INSERT INTO t VALUES ('b1')")
	if _, err := driver.Flush(ctx, b2); err != nil {
		t.Fatalf("second writer's flush: %v", err)
	}
	mustExec(t, a, "INSERT INTO t VALUES ('a2')")
	_, err := driver.Flush(ctx, a)
	if !errors.Is(err, snapshot.ErrConflict) {
		t.Fatalf("stale writer's flush: %v; want ErrConflict", err)
	}
	local := ca.Stats().LocalPath
	err = a.Close()
	if !errors.Is(err, snapshot.ErrConflict) || !strings.Contains(err.Error(), local) {
		t.Fatalf("Close of the stale writer: %v; want ErrConflict naming %s", err, local)
	}
	// The loser's working copy is kept, with its acknowledged write.
	kept, err := sql.Open("sqlite3", local)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := kept.QueryRow("SELECT count(*) FROM t WHERE who = 'a2'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("kept working copy: %d rows of a2, %v", n, err)
	}
	kept.Close()
	os.RemoveAll(filepath.Dir(local))
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	wb, _ := bucket.NewDir(root)
	if n := restoreCount(t, wb, "shared.db", "t"); n != 2 {
		t.Fatalf("winner's snapshot has %d rows, want 2 (a1, b1)", n)
	}
}

// A second sql.DB on the same snapshot in one process is refused.
func TestSameKeyTwiceRefused(t *testing.T) {
	dsn := "mem://twice/app.db"
	db := mustOpen(t, dsn)
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
	db := mustOpen(t, "mem://raw/app.db")
	defer db.Close()
	conn, err := db.Conn(ctx)
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
