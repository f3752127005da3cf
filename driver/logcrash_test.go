//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/childproc"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// logCompactDeltas is the compaction threshold of the compaction crash
// tests: a new base once 3 deltas follow the last one, so that the 4th
// flush after a base compacts.
const logCompactDeltas = 3

// envCompactDeltas, in a child's environment, sets the compaction
// threshold (driver.SetLogPolicy) of a crash child.
const envCompactDeltas = "BUCKETSQLITE_TEST_COMPACT_DELTAS"

// childLogPolicy applies envCompactDeltas in a child process.
func childLogPolicy() error {
	v, ok := os.LookupEnv(envCompactDeltas)
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s=%q: %v", envCompactDeltas, v, err)
	}
	driver.SetLogPolicy(1<<30, n, 16<<20)
	return nil
}

// A stopPoint is where a logcrash child stops for the parent to kill it:
// before (or just after) the nth call of op on a key of kind key ("base":
// KEY, "prev": KEY.prev, "log": a delta or the log's prefix).
type stopPoint struct {
	name  string
	op    faulty.Op
	key   string
	nth   int
	after bool
}

func (p stopPoint) args() []string {
	return []string{string(p.op), p.key, strconv.Itoa(p.nth), strconv.FormatBool(p.after)}
}

// keyKind is the kind of key for the database at base.
func keyKind(base, key string) string {
	switch {
	case key == base:
		return "base"
	case key == snapshot.PrevKey(base):
		return "prev"
	case strings.HasPrefix(key, snapshot.LogPrefix(base)):
		return "log"
	}
	return "other"
}

// logCrashMain is the child of TestLogCrashCompaction: crashMain's
// "flush" loop (write a batch, flush, repeat; the same output lines), on
// DSN args[0] through a bucket that, at the stop point args[1:5], prints
// "STOP" and waits to be killed.
func logCrashMain(args []string) int {
	say := func(format string, args ...any) { os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n") }
	if err := childLogPolicy(); err != nil {
		say("ERROR %v", err)
		return 2
	}
	nth, _ := strconv.Atoi(args[3])
	after, _ := strconv.ParseBool(args[4])
	stop := stopPoint{op: faulty.Op(args[1]), key: args[2], nth: nth, after: after}
	cfg, err := driver.ParseDSN(args[0])
	if err != nil {
		say("ERROR %v", err)
		return 2
	}
	inner, err := cfg.Bucket.Open(context.Background())
	if err != nil {
		say("ERROR open the bucket: %v", err)
		return 2
	}
	var (
		mu   sync.Mutex
		seen int
	)
	wait := func(op faulty.Op, key string) {
		say("STOP %s %s", op, key)
		for {
			time.Sleep(time.Hour) // until killed
		}
	}
	hb := &hookBucket{Bucket: inner, around: func(op faulty.Op, key string) func(error) {
		mu.Lock()
		defer mu.Unlock()
		if op != stop.op || keyKind(cfg.Key, key) != stop.key {
			return nil
		}
		if seen++; seen != stop.nth {
			return nil
		}
		if !stop.after {
			wait(op, key)
		}
		return func(err error) {
			if err != nil {
				say("ERROR the call before the stop point failed: %v", err)
				os.Exit(2)
			}
			wait(op, key)
		}
	}}
	c, err := driver.NewConnector(cfg, driver.WithBucket(hb))
	if err != nil {
		say("ERROR %v", err)
		return 2
	}
	db := sql.OpenDB(c)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t(x INTEGER PRIMARY KEY, b BLOB)"); err != nil {
		say("ERROR create: %v", err)
		return 2
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		say("ERROR count: %v", err)
		return 2
	}
	say("READY %d", n)
	for i := 0; ; i++ {
		if i == 100 {
			say("ERROR no stop point in %d flushes", i)
			return 2
		}
		k := 5 + i%7
		if _, err := db.Exec(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i+1 < ?)
			INSERT INTO t(x, b) SELECT ?+i, randomblob(500) FROM s`, k, n); err != nil {
			say("ERROR insert: %v", err)
			return 2
		}
		n += k
		say("COMMIT %d", n)
		say("FLUSHING %d", n)
		if _, err := driver.Flush(context.Background(), db); err != nil {
			say("ERROR flush: %v", err)
			return 2
		}
		say("ACK %d", n)
	}
}

// TestLogCrashCompaction kills (SIGKILL) a sync=log writer at chosen
// points of a compaction and of the deletion after it: the child stops at
// the chosen bucket request and tells the parent, which kills it there,
// so every run hits its point. The points: the compaction's delta written
// but KEY.prev not yet copied; KEY.prev copied but no new base; the new
// base uploaded but not confirmed; the new base confirmed but the
// compacted deltas not yet listed; one compacted delta deleted, the next
// not. After each kill a restore from the bucket is whole and holds the
// state of the flush the child was in (its delta was confirmed before the
// compaction started: never older than the last acknowledged flush); a
// new writer on the bucket (a temporary working copy, or the child's
// persistent one, which it reconciles) has every row, goes on flushing
// and compacting, and every restore after it equals its database, with
// a log that has no gap.
func TestLogCrashCompaction(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, logCompactDeltas, 16<<20)()
	t.Setenv(envCompactDeltas, strconv.Itoa(logCompactDeltas))
	// The first compaction is the 2nd base upload; the 2nd compaction
	// (the 3rd upload) is the first that deletes deltas (those up to the
	// first compaction's).
	points := []stopPoint{
		{name: "before keep previous", op: faulty.Copy, key: "prev", nth: 2},
		{name: "before base", op: faulty.Upload, key: "base", nth: 3},
		{name: "base unconfirmed", op: faulty.Upload, key: "base", nth: 3, after: true},
		{name: "before deletion", op: faulty.List, key: "log", nth: 2},
		{name: "mid deletion", op: faulty.Delete, key: "log", nth: 2},
	}
	forEachTarget(t, func(t *testing.T, tg target) {
		for _, local := range []bool{false, true} {
			for _, p := range points {
				name := p.name
				if local {
					name += " local"
				}
				t.Run(name, func(t *testing.T) { logCrashCompaction(t, tg, p, local) })
			}
		}
	})
}

func logCrashCompaction(t *testing.T, tg target, p stopPoint, local bool) {
	params := "flush_interval=0&sync=log&keep_previous=true"
	if local {
		params += "&local=" + filepath.Join(t.TempDir(), "work.db")
	}
	// Each subtest has a bucket of its own: a directory, or a prefix.
	dsn, b := tg.dsn("app.db", params), tg.b
	switch tg.name {
	case "dir":
		dir := t.TempDir()
		dsn, b = "file://"+dir+"/app.db?"+params, mustDir(t, dir)
	default:
		prefix := strings.NewReplacer(" ", "-").Replace(t.Name())
		prefix = prefix[strings.LastIndex(prefix, "/")+1:]
		dsn = strings.Replace(dsn, "/app.db?", "/"+prefix+"/app.db?", 1)
		b = bucket.WithPrefix(tg.b, prefix+"/")
	}
	cmd := childproc.Command("logcrash", append([]string{dsn}, p.args()...)...)
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	c := childproc.Start(t, cmd)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // against a hang only
	defer cancel()
	for {
		line, err := c.Next(rctx)
		if err != nil {
			t.Fatalf("the child never reached its stop point (%v): %q", err, c.Lines()[max(0, len(c.Lines())-5):])
		}
		if strings.HasPrefix(line, "ERROR") {
			t.Fatalf("the child failed: %s", line)
		}
		if strings.HasPrefix(line, "STOP") {
			t.Logf("child: %s", line)
			break
		}
	}
	c.Kill()
	l := parseChild(c.Lines())
	if len(l.errors) > 0 || len(l.flushing) == 0 {
		t.Fatalf("the child: %+v", l)
	}
	flushing := l.flushing[len(l.flushing)-1]
	got := snapshotRows(t, b, "app.db")
	t.Logf("killed in the flush of %d rows (last ack %d, %d flushes); the bucket restores %d rows", flushing, l.lastAck, len(l.flushing), got)
	if got != flushing {
		t.Fatalf("the bucket restores %d rows; the flush of %d had confirmed its delta before it was killed (last ack %d)", got, flushing, l.lastAck)
	}

	// A new writer goes on, through at least one compaction.
	db := mustOpen(t, dsn)
	defer db.Close()
	n := contiguousRows(t, db)
	if n != flushing {
		t.Fatalf("the new writer starts with %d rows; the child had committed and shipped %d", n, flushing)
	}
	st0, err := driver.GetStats(db)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 * (logCompactDeltas + 1) {
		mustExec(t, db, `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i+1 < 5)
			INSERT INTO t(x, b) SELECT ?+i, randomblob(500) FROM s`, n)
		n += 5
		if _, err := driver.Flush(ctx, db); err != nil {
			t.Fatalf("round %d: the new writer's flush: %v", round, err)
		}
		if got := snapshotRows(t, b, "app.db"); got != n {
			t.Fatalf("round %d: the bucket restores %d rows, the writer has %d", round, got, n)
		}
	}
	st, err := driver.GetStats(db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Compactions == st0.Compactions || st.Conflicted || st.LastError != nil {
		t.Fatalf("the new writer's stats: %+v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotRows(t, b, "app.db"); got != n {
		t.Fatalf("after Close the bucket restores %d rows, the writer had %d", got, n)
	}
	checkLog(t, b, "app.db", st.Seq)
	// What the killed compaction left is deleted by a later one: at most
	// the deltas of the current base and of the one before remain.
	if seqs := logKeys(t, b, "app.db"); len(seqs) > 2*(logCompactDeltas+1) || !contiguous(seqs) {
		t.Fatalf("%d deltas in the bucket: compacted deltas are left behind: %v", len(seqs), seqs)
	}
	t.Logf("the new writer: %d rows, %d compactions, seq %d, log %v", n, st.Compactions-st0.Compactions, st.Seq, logKeys(t, b, "app.db"))
}
