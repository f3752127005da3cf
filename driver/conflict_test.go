//go:build cgo

package driver_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/childproc"
	"github.com/buckethead/bucketsqlite/snapshot"
)

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

// writerMain is a child process the conflict tests drive through its
// stdin, one command per line, answering each on stdout with
// "OK [detail]" or "ERR kind message" (kind: conflict, diverged, other).
// It opens the DSN args[0]; the commands:
//
//	insert WHO     INSERT INTO t(who) VALUES (WHO), creating t if needed
//	flush          driver.Flush
//	local          answers OK PATH, the working copy's path
//	close          db.Close, then exit
func writerMain(args []string) int {
	db, err := sql.Open("bucketsqlite", args[0])
	answer := func(detail string, err error) {
		switch {
		case err == nil:
			fmt.Println(strings.TrimSpace("OK " + detail))
		case errors.Is(err, snapshot.ErrConflict):
			fmt.Println("ERR conflict", oneLine(err))
		case errors.Is(err, driver.ErrDiverged):
			fmt.Println("ERR diverged", oneLine(err))
		default:
			fmt.Println("ERR other", oneLine(err))
		}
	}
	if err != nil {
		answer("", err)
		return 2
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "insert":
			_, err := db.Exec("CREATE TABLE IF NOT EXISTS t(who TEXT)")
			if err == nil {
				_, err = db.Exec("INSERT INTO t(who) VALUES (?)", arg)
			}
			answer("", err)
		case "flush":
			_, err := driver.Flush(context.Background(), db)
			answer("", err)
		case "local":
			st, err := driver.GetStats(db)
			answer(st.LocalPath, err)
		case "close":
			answer("", db.Close())
			return 0
		default:
			answer("", fmt.Errorf("unknown command %q", cmd))
		}
	}
	return 0
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// writer is a running writerMain.
type writer struct {
	t *testing.T
	c *childproc.Child
}

// startWriter starts a writer on dsn whose temporary files go in tmp.
func startWriter(t *testing.T, dsn, tmp string) *writer {
	t.Helper()
	cmd := childproc.Command("writer", dsn)
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	return &writer{t: t, c: childproc.Start(t, cmd)}
}

// do sends a command and returns the answer's kind ("OK" or the error
// kind) and the rest of it.
func (w *writer) do(cmd string) (string, string) {
	w.t.Helper()
	if err := w.c.Send(cmd); err != nil {
		w.t.Fatalf("%s: %v", cmd, err)
	}
	// The bound only ends a hang: no answer is expected to be quick.
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	line, err := w.c.Next(actx)
	if err != nil {
		w.t.Fatalf("%s: no answer from the writer: %v", cmd, err)
	}
	if rest, ok := strings.CutPrefix(line, "OK"); ok {
		return "OK", strings.TrimSpace(rest)
	}
	if rest, ok := strings.CutPrefix(line, "ERR "); ok {
		kind, msg, _ := strings.Cut(rest, " ")
		return kind, msg
	}
	w.t.Fatalf("%s: unexpected answer %q", cmd, line)
	return "", ""
}

// must sends a command that must succeed and returns its detail.
func (w *writer) must(cmd string) string {
	w.t.Helper()
	kind, msg := w.do(cmd)
	if kind != "OK" {
		w.t.Fatalf("%s: %s %s", cmd, kind, msg)
	}
	return msg
}

// whoRows returns the who column of t in the database at path, sorted.
func whoRows(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return whoOf(t, db)
}

func whoOf(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow("SELECT group_concat(who, ',') FROM (SELECT who FROM t ORDER BY who)").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}

// bucketWho restores key and returns its who rows.
func bucketWho(t *testing.T, b bucket.Bucket, key string) string {
	t.Helper()
	db, err := restoreScratch(t, b, key)
	if err != nil {
		t.Fatalf("restore %s: %v", key, err)
	}
	return whoOf(t, db)
}

// TestTwoProcessesConflict runs two processes on one snapshot: both
// restore it, both write; the first to flush wins; the other's flush and
// Close fail with snapshot.ErrConflict, its working copy is kept with
// every write it acknowledged, and the winner's snapshot is intact.
func TestTwoProcessesConflict(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		tmp := t.TempDir()
		dsn := tg.dsn("app.db", "flush_interval=0")
		a := startWriter(t, dsn, tmp)
		a.must("insert a1")
		a.must("flush")
		b := startWriter(t, dsn, tmp)
		b.must("insert b1")
		a.must("insert a2")
		b.must("flush") // the winner
		before, err := tg.b.Stat(ctx, "app.db")
		if err != nil {
			t.Fatal(err)
		}
		local := a.must("local")
		if kind, msg := a.do("flush"); kind != "conflict" {
			t.Fatalf("the loser's flush: %s %s; want a conflict", kind, msg)
		}
		kind, msg := a.do("close")
		if kind != "conflict" || !strings.Contains(msg, local) {
			t.Fatalf("the loser's Close: %s %s; want a conflict naming %s", kind, msg, local)
		}
		if got := whoRows(t, local); got != "a1,a2" {
			t.Fatalf("the loser's kept working copy holds %q; want a1,a2", got)
		}
		if st, err := tg.b.Stat(ctx, "app.db"); err != nil || st.ETag != before.ETag {
			t.Fatal("the loser changed the winner's snapshot")
		}
		b.must("close")
		if got := bucketWho(t, tg.b, "app.db"); got != "a1,b1" {
			t.Fatalf("the winner's snapshot holds %q; want a1,b1", got)
		}
	})
}

// TestConflictRecovery follows the recovery steps the README gives for a
// persistent working copy that lost a conflict: reopening it fails with
// ErrDiverged, and then the user either discards the local writes, merges
// them into the bucket's snapshot, or overwrites the bucket with them.
func TestConflictRecovery(t *testing.T) {
	// lose sets up the situation: the loser's working copy at local holds
	// l1 and l2 (l2 never flushed); the bucket holds l1 and w1.
	lose := func(t *testing.T) (root, local, dsn string) {
		root = t.TempDir()
		local = filepath.Join(t.TempDir(), "work.db")
		dsn = "file://" + root + "/app.db?flush_interval=0&local=" + local
		tmp := t.TempDir()
		a := startWriter(t, dsn, tmp)
		a.must("insert l1")
		a.must("flush")
		w := startWriter(t, "file://"+root+"/app.db?flush_interval=0", tmp)
		w.must("insert w1")
		w.must("close")
		a.must("insert l2")
		if kind, msg := a.do("close"); kind != "conflict" {
			t.Fatalf("the loser's Close: %s %s", kind, msg)
		}
		db := mustOpen(t, dsn)
		if err := db.Ping(); !errors.Is(err, driver.ErrDiverged) || !strings.Contains(err.Error(), local) {
			t.Fatalf("reopening the loser: %v; want ErrDiverged naming %s", err, local)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return root, local, dsn
	}
	removeWorkingCopy := func(t *testing.T, local string) {
		for _, side := range []string{"", "-wal", "-shm", "-journal", "-bucketsqlite.json"} {
			if err := os.Remove(local + side); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
	}

	t.Run("discard local writes", func(t *testing.T) {
		root, local, dsn := lose(t)
		// 1. Remove the working copy and its side files.
		removeWorkingCopy(t, local)
		// 2. Reopen: the bucket's snapshot is restored.
		db := mustOpen(t, dsn)
		if got := whoOf(t, db); got != "l1,w1" {
			t.Fatalf("after discarding: %q", got)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if got := bucketWho(t, mustDir(t, root), "app.db"); got != "l1,w1" {
			t.Fatalf("bucket: %q", got)
		}
	})

	t.Run("merge", func(t *testing.T) {
		root, local, dsn := lose(t)
		// 1. Move the working copy aside (with its -wal, if any: open
		//    and close it once with plain SQLite to fold the WAL in).
		plain, err := sql.Open("sqlite3", local)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		plain.Close()
		mine := filepath.Join(t.TempDir(), "mine.db")
		if err := os.Rename(local, mine); err != nil {
			t.Fatal(err)
		}
		removeWorkingCopy(t, local)
		// 2. Reopen, which restores the bucket's snapshot; attach your
		//    copy and bring over what the snapshot lacks; flush.
		db := mustOpen(t, dsn)
		db.SetMaxOpenConns(1) // ATTACH is per connection
		mustExec(t, db, "ATTACH DATABASE ? AS mine", "file:"+mine+"?mode=ro")
		mustExec(t, db, "INSERT INTO t(who) SELECT who FROM mine.t WHERE who NOT IN (SELECT who FROM main.t)")
		mustExec(t, db, "DETACH DATABASE mine")
		if _, err := driver.Flush(ctx, db); err != nil {
			t.Fatalf("flush of the merge: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if got := bucketWho(t, mustDir(t, root), "app.db"); got != "l1,l2,w1" {
			t.Fatalf("bucket after the merge: %q", got)
		}
	})

	t.Run("overwrite the bucket", func(t *testing.T) {
		root, local, dsn := lose(t)
		b := mustDir(t, root)
		// 1. Upload the working copy over the snapshot on purpose, with
		//    the replaced one kept at KEY.prev.
		c, err := (&sqlite3.SQLiteDriver{}).Open(local)
		if err != nil {
			t.Fatal(err)
		}
		_, err = snapshot.Flush(ctx, c.(*sqlite3.SQLiteConn), b, "app.db", snapshot.FlushOptions{Force: true, KeepPrevious: true})
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		// 2. Remove the sync record only: on reopen the working copy
		//    matches the snapshot and is adopted.
		if err := os.Remove(local + "-bucketsqlite.json"); err != nil {
			t.Fatal(err)
		}
		db := mustOpen(t, dsn)
		if got := whoOf(t, db); got != "l1,l2" {
			t.Fatalf("after overwriting: %q", got)
		}
		if st, _ := driver.GetStats(db); st.Restored {
			t.Fatal("the working copy was downloaded again instead of adopted")
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if got := bucketWho(t, b, "app.db"); got != "l1,l2" {
			t.Fatalf("bucket: %q", got)
		}
		if got := bucketWho(t, b, "app.db.prev"); got != "l1,w1" {
			t.Fatalf("KEY.prev should keep the overwritten snapshot: %q", got)
		}
	})
}
