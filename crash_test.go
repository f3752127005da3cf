package bucketsqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// long reports whether the long variants of the reliability tests run
// (BUCKETSQLITE_LONG=1): hundreds of kills, a soak of minutes.
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv("BUCKETSQLITE_LONG"))
	return v
}

// seed returns the seed of a randomized test, from BUCKETSQLITE_SEED when
// set (to replay a failure), and logs it.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("BUCKETSQLITE_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BUCKETSQLITE_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("seed %d (replay with BUCKETSQLITE_SEED=%d)", s, s)
	return s
}

// The crash child's environment: the DSN, and the mode ("flush": write a
// batch, flush, repeat; "local": write row by row, flush now and then,
// with background flushes too).
const (
	crashDSNEnv  = "BUCKETSQLITE_CRASH_DSN"
	crashModeEnv = "BUCKETSQLITE_CRASH_MODE"
)

// TestCrashChild is not a test: it is the process TestCrash* run and kill.
// It writes and flushes until killed, and prints on stdout, one line per
// event, with a single write each (so a SIGKILL never tears a line):
//
//	READY n      restored; the database has rows 0..n-1
//	COMMIT n     a commit returned: the database has rows 0..n-1
//	FLUSHING n   a flush of rows 0..n-1 starts (nothing else writes)
//	ACK n        that flush returned nil
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashDSNEnv)
	if dsn == "" {
		t.Skip("helper process for the crash tests")
	}
	mode := os.Getenv(crashModeEnv)
	say := func(format string, args ...any) { os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n") }
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		say("ERROR open: %v", err)
		os.Exit(2)
	}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t(x INTEGER PRIMARY KEY)"); err != nil {
		say("ERROR create: %v", err)
		os.Exit(2)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		say("ERROR count: %v", err)
		os.Exit(2)
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
			os.Exit(2)
		}
		n += k
		say("COMMIT %d", n)
		if mode == "flush" || i%7 == 0 {
			say("FLUSHING %d", n)
			if _, err := driver.Flush(context.Background(), db); err != nil {
				say("ERROR flush: %v", err)
				os.Exit(2)
			}
			say("ACK %d", n)
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
		}
	}
	return l
}

// runAndKill starts a crash child on dsn, kills it with SIGKILL after a
// random delay (sometimes before it is ready), and returns what it said.
func runAndKill(t *testing.T, rng *rand.Rand, dsn, mode, tmp string) childLog {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDSNEnv+"="+dsn, crashModeEnv+"="+mode, "TMPDIR="+tmp)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		lines []string
		ready = make(chan struct{})
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "READY") || strings.HasPrefix(sc.Text(), "ERROR") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	if rng.IntN(5) == 0 {
		// Somewhere in start-up or restore.
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
	} else {
		select {
		case <-ready:
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("the crash child never got ready")
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return parseChild(lines)
}

// snapshotRows restores key from b and returns its row count, after
// checking that the rows are exactly 0..n-1 (so it is a state the child
// committed, not a mix). -1 when there is no snapshot.
func snapshotRows(t *testing.T, b bucket.Bucket, key string) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.db")
	info, err := snapshot.RestoreFile(ctx, b, key, path, snapshot.RestoreOptions{})
	if err != nil {
		t.Fatalf("the bucket's snapshot does not restore after the kill: %v", err)
	}
	if !info.Found {
		return -1
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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

// crashTarget is where the crash tests keep the snapshot.
type crashTarget struct {
	name string
	dsn  func(params string) string
	b    bucket.Bucket
}

func crashTargets(t *testing.T) []crashTarget {
	root := t.TempDir()
	dir := mustDir(t, root)
	out := []crashTarget{{"dir", func(p string) string { return "file://" + root + "/app.db?" + p }, dir}}
	srv := s3test.Start(t)
	name := srv.NewBucket(t, "")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	sb, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, crashTarget{"s3", func(p string) string {
		return fmt.Sprintf("s3://%s/app.db?endpoint=%s&region=%s&path_style=true&%s", name, srv.Endpoint, srv.Region, p)
	}, sb})
	return out
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
	for _, tg := range crashTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			n := kills(10, 200)
			if tg.name == "s3" {
				n = kills(5, 50)
			}
			tmp := t.TempDir()
			dsn := tg.dsn("flush_interval=0")
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
				t.Logf("kill %d: ready %d, last ack %d, flushing %v, bucket %d", i, l.ready, l.lastAck, tail(l.flushing, 3), got)
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
			if ents, _ := os.ReadDir(tmp); len(ents) > n {
				t.Logf("%d working directories left by killed children (expected: a kill leaves its temp dir)", len(ents))
			}
		})
	}
}

// TestCrashLocalLoop kills a process that writes row by row to a
// persistent working copy (local=PATH), flushing now and then and in the
// background, at random moments. After each kill the bucket holds a sound
// committed state no older than the last acknowledged flush; reopening
// the working copy keeps every committed row the child acknowledged, and
// closing it flushes them all.
func TestCrashLocalLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 2))
	for _, tg := range crashTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			n := kills(10, 200)
			if tg.name == "s3" {
				n = kills(5, 50)
			}
			tmp := t.TempDir()
			local := filepath.Join(t.TempDir(), "work.db")
			dsn := tg.dsn("flush_interval=5ms&local=" + local)
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
				db := mustOpen(t, tg.dsn("flush_interval=0&local="+local))
				if err := db.Ping(); err != nil {
					t.Fatalf("kill %d: reopening the working copy: %v", i, err)
				}
				have := contiguousRows(t, db)
				t.Logf("kill %d: last commit %d, last ack %d, bucket %d, working copy %d", i, l.lastCommit, l.lastAck, got, have)
				if have < committed {
					t.Fatalf("kill %d: the working copy has %d rows; the child acknowledged %d", i, have, committed)
				}
				if err := db.Close(); err != nil {
					t.Fatalf("kill %d: Close after reopening: %v", i, err)
				}
				// A child killed before it created its working copy leaves
				// nothing to flush: no snapshot (-1) is its empty database.
				if b := snapshotRows(t, tg.b, "app.db"); b != have && (b != -1 || have != 0) {
					t.Fatalf("kill %d: after Close the bucket has %d rows, the working copy %d", i, b, have)
				}
				committed, acked = have, have
			}
			if committed <= 0 {
				t.Fatal("nothing was ever committed: the test proved nothing")
			}
		})
	}
}

func tail(s []int, n int) []int {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
