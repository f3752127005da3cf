//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/childproc"
)

// crashMain is the child process TestCrash* run and kill. It opens the
// DSN args[0] and writes and flushes until killed, in the mode args[1]
// ("flush": write a batch, flush, repeat; "local": write row by row, flush
// now and then, with background flushes too). It prints on stdout, one
// line per event, with a single write each (so a SIGKILL never tears a
// line):
//
//	READY n      restored; the database has rows 0..n-1
//	COMMIT n     a commit returned: the database has rows 0..n-1
//	FLUSHING n   a flush of rows 0..n-1 starts (nothing else writes)
//	ACK n        that flush returned nil
//	COMPACTED c  with sync=log, c compactions so far (after an ACK that made one)
//
// With BUCKETSQLITE_TEST_COMPACT_DELTAS set, sync=log compacts after that
// many deltas.
func crashMain(args []string) int {
	dsn, mode := args[0], args[1]
	say := func(format string, args ...any) { os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n") }
	if err := childLogPolicy(); err != nil {
		say("ERROR %v", err)
		return 2
	}
	var compactions int64
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		say("ERROR open: %v", err)
		return 2
	}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t(x INTEGER PRIMARY KEY)"); err != nil {
		say("ERROR create: %v", err)
		return 2
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		say("ERROR count: %v", err)
		return 2
	}
	say("READY %d", n)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	for i := 0; ; i++ {
		k := 1
		if mode == "flush" {
			k = 1 + rng.IntN(20)
		}
		tx, err := db.Begin()
		if err == nil {
			for j := range k {
				if _, err = tx.Exec("INSERT INTO t(x) VALUES (?)", n+j); err != nil {
					break
				}
			}
			if err == nil {
				err = tx.Commit()
			} else {
				tx.Rollback()
			}
		}
		if err != nil {
			say("ERROR insert: %v", err)
			return 2
		}
		n += k
		say("COMMIT %d", n)
		if mode == "flush" || i%7 == 0 {
			say("FLUSHING %d", n)
			if _, err := driver.Flush(context.Background(), db); err != nil {
				say("ERROR flush: %v", err)
				return 2
			}
			say("ACK %d", n)
			if st, err := driver.GetStats(db); err == nil && st.Compactions > compactions {
				compactions = st.Compactions
				say("COMPACTED %d", compactions)
			}
		}
	}
}

// childLog is what a crash child said before it was killed.
type childLog struct {
	ready            int // -1 if it never got ready
	lastCommit       int // -1 if none
	lastAck          int // -1 if none
	flushing         []int
	errors           []string
	compactions      int64 // the last COMPACTED
	lines            int
	firstReadyAtLine int
}

func parseChild(out []string) childLog {
	l := childLog{ready: -1, lastCommit: -1, lastAck: -1}
	for _, line := range out {
		l.lines++
		verb, arg, _ := strings.Cut(line, " ")
		n, _ := strconv.Atoi(arg)
		switch verb {
		case "READY":
			l.ready = n
		case "COMMIT":
			l.lastCommit = n
		case "FLUSHING":
			l.flushing = append(l.flushing, n)
		case "ACK":
			l.lastAck = n
		case "ERROR":
			l.errors = append(l.errors, line)
		case "COMPACTED":
			l.compactions = int64(n)
		}
	}
	return l
}

// runAndKill starts a crash child on dsn, kills it with SIGKILL after a
// random delay (sometimes before it is ready), and returns what it said.
func runAndKill(t *testing.T, rng *rand.Rand, dsn, mode, tmp string) childLog {
	t.Helper()
	cmd := childproc.Command("crash", dsn, mode)
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	c := childproc.Start(t, cmd)
	if rng.IntN(5) == 0 {
		// Somewhere in start-up or restore.
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
	} else {
		// The bound only ends a hang: readiness is not expected to be quick.
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		for {
			line, err := c.Next(rctx)
			if errors.Is(err, context.DeadlineExceeded) {
				cancel()
				t.Fatal("the crash child never got ready")
			}
			if err != nil || strings.HasPrefix(line, "READY") || strings.HasPrefix(line, "ERROR") {
				break
			}
		}
		cancel()
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	c.Kill()
	return parseChild(c.Lines())
}

// snapshotRows restores key from b and returns its row count, after
// checking that the rows are exactly 0..n-1 (so it is a state the child
// committed, not a mix). -1 when there is no snapshot.
func snapshotRows(t *testing.T, b bucket.Bucket, key string) int {
	t.Helper()
	db, err := restoreScratch(t, b, key)
	if errors.Is(err, bucket.ErrNotFound) {
		return -1
	}
	if err != nil {
		t.Fatalf("the bucket's snapshot does not restore after the kill: %v", err)
	}
	return contiguousRows(t, db)
}

// contiguousRows returns the number of rows of t, failing unless they are
// exactly 0..n-1.
func contiguousRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var tables int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 't'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables == 0 {
		return 0 // killed before it created its table
	}
	var n, lo, hi int
	if err := db.QueryRow("SELECT count(*), coalesce(min(x), 0), coalesce(max(x), -1) FROM t").Scan(&n, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n > 0 && (lo != 0 || hi != n-1) {
		t.Fatalf("rows are not a committed state: %d rows from %d to %d", n, lo, hi)
	}
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %s %v", check, err)
	}
	return n
}

// kills returns how many times a crash test kills its child.
func kills(short, long_ int) int {
	if long() {
		return long_
	}
	return short
}

// TestCrashFlushLoop kills a process that writes and flushes in a loop
// (temporary working copy) at random moments. After each kill the bucket
// holds a sound snapshot (integrity_check passes, rows are a committed
// state) that is a state the child acknowledged as flushed or was
// flushing, and never older than its last acknowledged flush. The next
// child restores that and goes on.
func TestCrashFlushLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 1))
	for _, sync := range []string{"full", "log"} {
		t.Run(sync, func(t *testing.T) { crashFlushLoop(t, rng, sync) })
	}
}

// crashFlushLoop is TestCrashFlushLoop with sync=mode: with sync=log, a
// kill lands in the capture, the delta upload, a compaction or a restore
// applying deltas.
func crashFlushLoop(t *testing.T, rng *rand.Rand, mode string) {
	logCompactions(t, mode)
	forEachTarget(t, func(t *testing.T, tg target) {
		var compactions int64
		n := kills(10, 200)
		if tg.name == "s3" {
			n = kills(5, 50)
		}
		tmp := t.TempDir()
		dsn := tg.dsn("app.db", "flush_interval=0&sync="+mode)
		acked := -1
		for i := range n {
			l := runAndKill(t, rng, dsn, "flush", tmp)
			if len(l.errors) > 0 {
				t.Fatalf("kill %d: the child failed: %v", i, l.errors)
			}
			got := snapshotRows(t, tg.b, "app.db")
			if l.lastAck > acked {
				acked = l.lastAck
			}
			compactions += l.compactions
			t.Logf("kill %d: ready %d, last ack %d, flushing %v, bucket %d, compactions %d", i, l.ready, l.lastAck, tail(l.flushing, 3), got, l.compactions)
			switch {
			case got < acked:
				t.Fatalf("kill %d: the bucket holds %d rows, older than the acknowledged flush of %d", i, got, acked)
			case got != -1 && got != l.ready && got != acked && !slices.Contains(l.flushing, got):
				t.Fatalf("kill %d: the bucket holds %d rows, a state never flushed (acked %d, flushing %v)", i, got, acked, l.flushing)
			}
			acked = max(acked, got)
		}
		if acked <= 0 {
			t.Fatalf("no flush was ever acknowledged in %d runs: the test proved nothing", n)
		}
		if mode == "log" {
			t.Logf("%d compactions in %d runs", compactions, n)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) > n {
			t.Logf("%d working directories left by killed children (expected: a kill leaves its temp dir)", len(ents))
		}
	})
}

// TestCrashLocalLoop kills a process that writes row by row to a
// persistent working copy (local=PATH), flushing now and then and in the
// background, at random moments. After each kill the bucket holds a sound
// committed state no older than the last acknowledged flush; reopening
// the working copy keeps every committed row the child acknowledged, and
// closing it flushes them all.
func TestCrashLocalLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 2))
	for _, sync := range []string{"full", "log"} {
		t.Run(sync, func(t *testing.T) { crashLocalLoop(t, rng, sync) })
	}
}

// crashLocalLoop is TestCrashLocalLoop with sync=mode.
func crashLocalLoop(t *testing.T, rng *rand.Rand, mode string) {
	logCompactions(t, mode)
	forEachTarget(t, func(t *testing.T, tg target) {
		var compactions int64
		n := kills(10, 200)
		if tg.name == "s3" {
			n = kills(5, 50)
		}
		tmp := t.TempDir()
		local := filepath.Join(t.TempDir(), "work.db")
		dsn := tg.dsn("app.db", "flush_interval=5ms&sync="+mode+"&local="+local)
		acked, committed := -1, -1
		for i := range n {
			l := runAndKill(t, rng, dsn, "local", tmp)
			if len(l.errors) > 0 {
				t.Fatalf("kill %d: the child failed: %v", i, l.errors)
			}
			acked = max(acked, l.lastAck)
			committed = max(committed, l.lastCommit, l.ready)
			got := snapshotRows(t, tg.b, "app.db")
			if got < acked {
				t.Fatalf("kill %d: the bucket holds %d rows, older than the acknowledged flush of %d", i, got, acked)
			}
			if got > committed && committed >= 0 {
				t.Fatalf("kill %d: the bucket holds %d rows, more than were ever committed (%d)", i, got, committed)
			}
			// Reopen: every acknowledged commit is there, and Close
			// flushes it.
			db := mustOpen(t, tg.dsn("app.db", "flush_interval=0&sync="+mode+"&local="+local))
			if err := db.Ping(); err != nil {
				t.Fatalf("kill %d: reopening the working copy: %v", i, err)
			}
			have := contiguousRows(t, db)
			compactions += l.compactions
			t.Logf("kill %d: last commit %d, last ack %d, bucket %d, working copy %d, compactions %d", i, l.lastCommit, l.lastAck, got, have, l.compactions)
			if have < committed {
				t.Fatalf("kill %d: the working copy has %d rows; the child acknowledged %d", i, have, committed)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("kill %d: Close after reopening: %v", i, err)
			}
			// A child killed before it created its working copy leaves
			// nothing to flush: no snapshot (-1) is its empty database.
			b := snapshotRows(t, tg.b, "app.db")
			if b != have && (b != -1 || have != 0) {
				t.Fatalf("kill %d: after Close the bucket has %d rows, the working copy %d", i, b, have)
			}
			committed, acked = have, b
		}
		if committed <= 0 {
			t.Fatal("nothing was ever committed: the test proved nothing")
		}
		if mode == "log" {
			t.Logf("%d compactions in %d runs", compactions, n)
		}
	})
}

// logCompactions makes sync=log compact every few flushes, in this process
// and in the crash children, so that kills land in compactions too.
func logCompactions(t *testing.T, mode string) {
	if mode != "log" {
		return
	}
	t.Setenv(envCompactDeltas, strconv.Itoa(logCompactDeltas))
	t.Cleanup(driver.SetLogPolicy(1<<30, logCompactDeltas, 16<<20))
}

func tail(s []int, n int) []int {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
