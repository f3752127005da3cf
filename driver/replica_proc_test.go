//go:build cgo

package driver_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/childproc"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// replicaMain is a child process holding a read replica of the DSN
// args[0], driven through its stdin like writerMain:
//
//	count     answers OK N, the rows of t (0 without t)
//	refresh   driver.Refresh
//	stats     answers OK SEQ REBASES DELTAS_APPLIED
//	write     tries an INSERT: OK if it was refused with SQLite's
//	          read-only error, ERR other otherwise
//	close     db.Close, then exit
func replicaMain(args []string) int {
	db, err := sql.Open("bucketsqlite", args[0])
	answer := func(detail string, err error) {
		if err != nil {
			fmt.Println("ERR other", oneLine(err))
			return
		}
		fmt.Println(strings.TrimSpace("OK " + detail))
	}
	if err != nil {
		answer("", err)
		return 2
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch cmd := sc.Text(); cmd {
		case "count":
			var n int
			err := db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 't'").Scan(&n)
			if err == nil && n > 0 {
				err = db.QueryRow("SELECT count(*) FROM t").Scan(&n)
			}
			answer(strconv.Itoa(n), err)
		case "refresh":
			answer("", driver.Refresh(context.Background(), db))
		case "stats":
			st, err := driver.GetStats(db)
			answer(fmt.Sprintf("%d %d %d", st.Seq, st.Rebases, st.DeltasApplied), err)
		case "write":
			_, err := db.Exec("INSERT INTO t(who) VALUES ('replica')")
			var se sqlite3.Error
			if errors.As(err, &se) && se.Code == sqlite3.ErrReadonly {
				err = nil
			} else if err == nil {
				err = errors.New("a replica accepted a write")
			}
			answer("", err)
		case "close":
			answer("", db.Close())
			return 0
		default:
			answer("", fmt.Errorf("unknown command %q", cmd))
		}
	}
	return 0
}

// logWriterMain is writerMain with compaction every
// BUCKETSQLITE_TEST_COMPACT deltas.
func logWriterMain(args []string) int {
	if n, err := strconv.Atoi(os.Getenv("BUCKETSQLITE_TEST_COMPACT")); err == nil {
		driver.SetLogPolicy(1, n, 16<<20)
	}
	return writerMain(args)
}

// startLogWriter starts a sync=log writer child on dsn that compacts
// every compact deltas (0: the default policy).
func startLogWriter(t *testing.T, dsn string, compact int) *writer {
	t.Helper()
	cmd := childproc.Command("logwriter", dsn)
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	if compact > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprint("BUCKETSQLITE_TEST_COMPACT=", compact))
	}
	return &writer{t: t, c: childproc.Start(t, cmd)}
}

// startReplica starts a replicaMain child on dsn.
func startReplica(t *testing.T, dsn string) *writer {
	t.Helper()
	cmd := childproc.Command("replica", dsn)
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	return &writer{t: t, c: childproc.Start(t, cmd)}
}

// Two replicas that share nothing but the bucket, one in this process and
// one in another, follow a writer in a third through their background
// refreshes; a write on either is refused.
func TestReplicaProcessesFollowWriter(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		w := startLogWriter(t, tg.dsn("app.db", "flush_interval=0&sync=log"), 0)
		defer w.must("close")
		w.must("insert a0")
		w.must("flush")
		rdsn := tg.dsn("app.db", "replica=true&refresh_interval=20ms")
		here := mustOpen(t, rdsn)
		defer here.Close()
		there := startReplica(t, rdsn)
		defer there.must("close")
		for i := 1; i <= 5; i++ {
			w.must(fmt.Sprint("insert a", i))
			w.must("flush")
			waitFor(t, fmt.Sprintf("this process's replica to see row %d", i), func() bool { return countRows(t, here, "t") == i+1 })
			waitFor(t, fmt.Sprintf("the other process's replica to see row %d", i), func() bool { return there.must("count") == strconv.Itoa(i+1) })
		}
		there.must("write")
		if _, err := here.Exec("INSERT INTO t(who) VALUES ('replica')"); err == nil || !strings.Contains(err.Error(), "readonly") {
			t.Fatalf("a write on a replica: %v; want SQLite's read-only error", err)
		}
		st, err := driver.GetStats(here)
		if err != nil || st.Seq == 0 || st.DeltasApplied == 0 || st.Refreshes == 0 || st.WriterFlush.IsZero() {
			t.Fatalf("stats: %+v, %v", st, err)
		}
	})
}

// A writer killed at random moments, mid-flush among them, leaves a
// replica on the last complete state: queries made while it follows
// (every 5ms) always see a committed state, and after each kill it holds
// one no older than the writer's last acknowledged flush.
func TestReplicaWriterKilled(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 3))
	forEachTarget(t, func(t *testing.T, tg target) {
		tmp := t.TempDir()
		dsn := tg.dsn("app.db", "flush_interval=0&sync=log")
		l := runAndKill(t, rng, dsn, "flush", tmp)
		for l.lastAck <= 0 && len(l.errors) == 0 {
			l = runAndKill(t, rng, dsn, "flush", tmp)
		}
		r := mustOpen(t, tg.dsn("app.db", "replica=true&refresh_interval=5ms"))
		defer r.Close()
		var bad atomic.Pointer[string]
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n, lo, hi int
				err := r.QueryRow("SELECT count(*), coalesce(min(x), 0), coalesce(max(x), -1) FROM t").Scan(&n, &lo, &hi)
				if err != nil || (n > 0 && (lo != 0 || hi != n-1)) {
					s := fmt.Sprintf("a query saw %d rows from %d to %d (%v)", n, lo, hi, err)
					bad.Store(&s)
				}
			}
		}()
		acked, committed := l.lastAck, max(l.lastCommit, l.ready)
		for i := range kills(4, 40) {
			l := runAndKill(t, rng, dsn, "flush", tmp)
			if len(l.errors) > 0 {
				t.Fatalf("kill %d: the child failed: %v", i, l.errors)
			}
			acked, committed = max(acked, l.lastAck), max(committed, l.lastCommit, l.ready)
			if err := driver.Refresh(ctx, r); err != nil {
				t.Fatalf("kill %d: refresh: %v", i, err)
			}
			got := contiguousRows(t, r)
			t.Logf("kill %d: last ack %d, last commit %d, replica %d", i, l.lastAck, l.lastCommit, got)
			if got < acked || got > committed {
				t.Fatalf("kill %d: the replica holds %d rows; acked %d, committed %d", i, got, acked, committed)
			}
			if s := bad.Load(); s != nil {
				t.Fatalf("kill %d: %s", i, *s)
			}
		}
		close(stop)
		<-done
	})
}

// A replica down while the writer compacted past its sequence more than
// once (its next delta deleted: longer than the log's grace period)
// resumes its persistent working copy, finds the log moved on, and
// restores the new base once; then it follows with deltas again. One
// behind by less catches up with deltas alone.
func TestReplicaDownPastCompactions(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		w := startLogWriter(t, tg.dsn("app.db", "flush_interval=0&sync=log"), 3)
		defer w.must("close")
		w.must("insert a0")
		w.must("flush")
		local := filepath.Join(t.TempDir(), "replica.db")
		rdsn := tg.dsn("app.db", "replica=true&refresh_interval=0&local="+local)
		r := mustOpen(t, rdsn)
		countRows(t, r, "t")
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			w.must(fmt.Sprint("insert b", i))
			w.must("flush")
		}
		r = mustOpen(t, rdsn)
		if n := countRows(t, r, "t"); n != 3 {
			t.Fatalf("replica back within the grace period sees %d rows, want 3", n)
		}
		if st := replicaStats(t, r); st.Restored || st.Rebases != 0 || st.DeltasApplied != 2 {
			t.Fatalf("replica back within the grace period: %+v", st)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 10; i++ {
			w.must(fmt.Sprint("insert c", i))
			w.must("flush")
		}
		if _, err := tg.b.Stat(ctx, snapshot.LogKey("app.db", 3)); err == nil {
			t.Fatal("the writer kept the delta the replica needs: the test proves nothing")
		}
		r = mustOpen(t, rdsn)
		defer r.Close()
		if n := countRows(t, r, "t"); n != 13 {
			t.Fatalf("replica back after the grace period sees %d rows, want 13", n)
		}
		st := replicaStats(t, r)
		if st.Restored || st.Rebases != 1 {
			t.Fatalf("replica back after the grace period: %+v", st)
		}
		w.must("insert d1")
		w.must("flush")
		st = mustRefresh(t, r)
		if n := countRows(t, r, "t"); n != 14 || st.Rebases != 1 {
			t.Fatalf("after one more flush: %d rows, %+v", n, st)
		}
	})
}

// A damaged delta in S3: the replica stays on its last good state and
// reports the error until the object is sound again.
func TestReplicaDamagedDeltaS3(t *testing.T) {
	tg := targets(t)[1]
	w := startLogWriter(t, tg.dsn("app.db", "flush_interval=0&sync=log"), 0)
	defer w.must("close")
	w.must("insert a0")
	w.must("flush")
	r := mustOpen(t, tg.dsn("app.db", "replica=true&refresh_interval=0"))
	defer r.Close()
	countRows(t, r, "t")
	w.must("insert a1")
	w.must("flush")
	key := snapshot.LogKey("app.db", 1)
	good := readObject(t, tg.b, key)
	a, err := tg.b.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-40] ^= 1
	if _, err := tg.b.Upload(ctx, key, bytesReader(bad), int64(len(bad)), bucketWrite(nil)); err != nil {
		t.Fatal(err)
	}
	if err := driver.Refresh(ctx, r); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("refresh over a damaged delta: %v; want ErrCorrupt", err)
	}
	if n := countRows(t, r, "t"); n != 1 {
		t.Fatalf("replica sees %d rows, want its last good state (1)", n)
	}
	if st := replicaStats(t, r); !errors.Is(st.LastError, snapshot.ErrCorrupt) || st.RefreshFailures == 0 {
		t.Fatalf("stats: %+v", st)
	}
	if _, err := tg.b.Upload(ctx, key, bytesReader(good), int64(len(good)), bucketWrite(a.Metadata)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica to go on", func() bool { return driver.Refresh(ctx, r) == nil && countRows(t, r, "t") == 2 })
}

func bucketWrite(meta map[string]string) bucket.WriteOptions {
	return bucket.WriteOptions{Metadata: meta}
}
