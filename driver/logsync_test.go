//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// openLog opens key on b with sync=log.
func openLog(t *testing.T, b bucket.Bucket, key, params string) (*sql.DB, *driver.Connector) {
	t.Helper()
	cfg, err := driver.ParseDSN("mem://unused/" + key + "?flush_interval=0&sync=log" + params)
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(b))
	if err != nil {
		t.Fatal(err)
	}
	return sql.OpenDB(c), c
}

// restoredRows restores key from b into a scratch file, as a new process
// would, and returns t's rows as one string.
func restoredRows(t *testing.T, b bucket.Bucket, key string) (string, snapshot.Info) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.db")
	info, err := snapshot.RestoreFile(context.Background(), b, key, path, snapshot.RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dumpT(t, db), info
}

func mustFlush(t *testing.T, db *sql.DB) driver.FlushResult {
	t.Helper()
	res, err := driver.Flush(context.Background(), db)
	if err != nil {
		t.Fatalf("flush: %v", err)
	}
	return res
}

// With sync=log, the first flush writes a base and every later one that
// changed something one small delta, with one PUT and one confirming
// Stat; a restore applies them and gets every acknowledged row.
func TestLogFlushShipsOnlyChanges(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	db, c := openLog(t, fb, "app.db", "")
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	for i := range 2000 {
		mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(i), 40))
	}
	base := mustFlush(t, db)
	if !base.Uploaded || base.BytesWritten < 100<<10 {
		t.Fatalf("first flush: %+v; want a base of the whole database", base)
	}
	for round := 1; round <= 5; round++ {
		mustExec(t, db, "UPDATE t SET v = ? WHERE x = ?", fmt.Sprint("round ", round), round*7)
		before := fb.Calls(faulty.Any)
		puts := fb.Calls(faulty.Upload)
		res := mustFlush(t, db)
		if !res.Uploaded || res.BytesWritten > 64<<10 {
			t.Fatalf("round %d: a one-row update uploaded %d bytes; want one small delta", round, res.BytesWritten)
		}
		if n, p := fb.Calls(faulty.Any)-before, fb.Calls(faulty.Upload)-puts; p != 1 || n > 2 {
			t.Fatalf("round %d: %d requests, %d uploads; want one PUT and one Stat", round, n, p)
		}
		want := dumpT(t, db)
		got, info := restoredRows(t, fb.Inner(), "app.db")
		if got != want {
			t.Fatalf("round %d: the restored database differs from the writer's", round)
		}
		if info.Seq != uint64(round) || info.Deltas != round {
			t.Fatalf("round %d: restored through sequence %d with %d deltas", round, info.Seq, info.Deltas)
		}
	}
	if st := c.Stats(); st.Deltas != 5 || st.Seq != 5 || st.DeltaBytes == 0 {
		t.Fatalf("stats: %+v", st)
	}
	if idle := mustFlush(t, db); !idle.Idle {
		t.Fatalf("a flush with nothing committed: %+v, want idle", idle)
	}
}

// Deltas that add up to the compaction threshold make the writer upload a
// new base; the deltas of the base before the previous one are deleted;
// a restore of the new base alone has every row. The WAL is restarted
// along the way, and nothing is lost.
func TestLogCompactionAndWALRestart(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 8, 256<<10)()
	fb := faulty.New(bucket.NewMemory())
	db, c := openLog(t, fb, "app.db", "")
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	mustFlush(t, db)
	for round := range 40 {
		for i := range 50 {
			mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(round, i), 30))
		}
		mustFlush(t, db)
		if got, _ := restoredRows(t, fb.Inner(), "app.db"); got != dumpT(t, db) {
			t.Fatalf("round %d: the restored database differs from the writer's", round)
		}
	}
	st := c.Stats()
	if st.Compactions < 2 {
		t.Fatalf("stats %+v: want at least two compactions", st)
	}
	page, err := fb.Inner().List(context.Background(), bucket.ListOptions{Prefix: snapshot.LogPrefix("app.db")})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) == 0 || len(page.Objects) >= int(st.Seq) {
		t.Fatalf("%d deltas in the bucket after %d flushes and %d compactions: compacted deltas are not deleted", len(page.Objects), st.Seq, st.Compactions)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// Two writers on one key: the second to write a sequence gets ErrConflict
// and overwrites nothing.
func TestLogTwoWritersConflict(t *testing.T) {
	inner := bucket.NewMemory()
	a, _ := openLog(t, faulty.New(inner), "app.db", "")
	defer a.Close()
	mustExec(t, a, "CREATE TABLE t(x)")
	mustFlush(t, a)
	b, _ := openLog(t, faulty.New(inner), "app.db", "")
	defer b.Close()
	mustExec(t, b, "INSERT INTO t VALUES (2)")
	mustExec(t, a, "INSERT INTO t VALUES (1)")
	mustFlush(t, a)
	want, _ := restoredRows(t, inner, "app.db")
	if _, err := driver.Flush(context.Background(), b); !errors.Is(err, snapshot.ErrConflict) {
		t.Fatalf("the second writer's flush: %v, want ErrConflict", err)
	}
	if got, _ := restoredRows(t, inner, "app.db"); got != want {
		t.Fatal("the second writer changed what the bucket holds")
	}
}

// A delta whose upload fails is sent again, byte for byte, by the next
// flush; one whose response was lost after it landed is recognised as
// this writer's, not a conflict.
func TestLogDeltaUploadFaults(t *testing.T) {
	for _, f := range []faulty.Fault{faulty.Fail(nil), faulty.FailAfter(nil)} {
		t.Run(f.String(), func(t *testing.T) {
			fb := faulty.New(bucket.NewMemory())
			db, _ := openLog(t, fb, "app.db", "")
			defer db.Close()
			mustExec(t, db, "CREATE TABLE t(x)")
			mustFlush(t, db)
			mustExec(t, db, "INSERT INTO t VALUES (1)")
			rule := fb.Inject(faulty.Upload, 1, f)
			if _, err := driver.Flush(context.Background(), db); err == nil || rule.Fired() != 1 {
				t.Fatalf("flush through %v: %v (fired %d)", f, err, rule.Fired())
			}
			mustExec(t, db, "INSERT INTO t VALUES (2)")
			mustFlush(t, db)
			if got, _ := restoredRows(t, fb.Inner(), "app.db"); got != dumpT(t, db) {
				t.Fatal("after the fault the bucket lacks acknowledged rows")
			}
		})
	}
}

// A damaged delta is ErrCorrupt naming it, never a silently older
// database.
func TestLogRestoreDamagedDelta(t *testing.T) {
	inner := bucket.NewMemory()
	db, _ := openLog(t, faulty.New(inner), "app.db", "")
	mustExec(t, db, "CREATE TABLE t(x)")
	mustFlush(t, db)
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	mustFlush(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	key := snapshot.LogKey("app.db", 1)
	data := readObject(t, inner, key)
	data[len(data)/2] ^= 0xff
	if _, err := inner.Upload(context.Background(), key, strings.NewReader(string(data)), int64(len(data)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := snapshot.RestoreFile(context.Background(), inner, "app.db", filepath.Join(t.TempDir(), "x.db"), snapshot.RestoreOptions{})
	if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), key) {
		t.Fatalf("restore with a damaged delta: %v, want ErrCorrupt naming %s", err, key)
	}
}

// A bucket holding only a plain snapshot (the original's, or sync=full's)
// restores and continues as a log: the first flush writes a base that
// records its sequence, so readers find the deltas after it.
func TestLogContinuesPlainSnapshot(t *testing.T) {
	inner := bucket.NewMemory()
	full, err := driver.NewConnector(mustConfig(t, "mem://unused/app.db?flush_interval=0"), driver.WithBucket(inner))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(full)
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _ = openLog(t, faulty.New(inner), "app.db", "")
	defer db.Close()
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	mustFlush(t, db)
	mustExec(t, db, "INSERT INTO t VALUES (3)")
	mustFlush(t, db)
	got, info := restoredRows(t, inner, "app.db")
	if got != dumpT(t, db) || !info.Log || info.Deltas != 1 {
		t.Fatalf("restored %+v", info)
	}
}

func mustConfig(t *testing.T, dsn string) *driver.Config {
	t.Helper()
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readObject(t *testing.T, b bucket.Bucket, key string) []byte {
	t.Helper()
	a, err := b.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, a.Size)
	w := &sliceWriter{buf: buf}
	if _, err := b.Download(context.Background(), key, w); err != nil {
		t.Fatal(err)
	}
	return buf
}

type sliceWriter struct{ buf []byte }

func (w *sliceWriter) WriteAt(p []byte, off int64) (int, error) { return copy(w.buf[off:], p), nil }

// dumpT returns every row of t, every column, in rowid order.
func dumpT(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM t ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// openLogLocal opens key on b with sync=log and a persistent working copy.
func openLogLocal(t *testing.T, b bucket.Bucket, local string) *sql.DB {
	t.Helper()
	db, _ := openLog(t, b, "app.db", "&local="+local)
	return db
}

// A persistent working copy with sync=log: a clean restart is proven to
// hold the log's state (its image checksum) and goes on with small
// deltas, no new base; a restart ahead of the bucket (a failed final
// flush) uploads a new base with everything; a bucket whose log moved on
// is restored from, or, with local writes too, is ErrDiverged.
func TestLogLocal(t *testing.T) {
	t.Run("clean restart", func(t *testing.T) {
		inner := bucket.NewMemory()
		local := filepath.Join(t.TempDir(), "work.db")
		db := openLogLocal(t, faulty.New(inner), local)
		mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
		for i := range 500 {
			mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(i), 30))
		}
		mustFlush(t, db)
		mustExec(t, db, "UPDATE t SET v = 'one' WHERE x = 1")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openLogLocal(t, faulty.New(inner), local)
		defer db.Close()
		mustExec(t, db, "UPDATE t SET v = 'two' WHERE x = 2")
		res := mustFlush(t, db)
		st, _ := driver.GetStats(db)
		if !res.Uploaded || res.BytesWritten > 64<<10 || st.Compactions != 0 || st.Deltas != 1 {
			t.Fatalf("the first flush after a clean restart: %+v, stats %+v; want one small delta", res, st)
		}
		if got, _ := restoredRows(t, inner, "app.db"); got != dumpT(t, db) {
			t.Fatal("the restored database differs from the writer's")
		}
	})
	t.Run("ahead after a failed close", func(t *testing.T) {
		inner := bucket.NewMemory()
		local := filepath.Join(t.TempDir(), "work.db")
		fb := faulty.New(inner)
		db := openLogLocal(t, fb, local)
		mustExec(t, db, "CREATE TABLE t(x)")
		mustFlush(t, db)
		mustExec(t, db, "INSERT INTO t VALUES (1)")
		fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(errors.New("injected outage")))
		if err := db.Close(); err == nil {
			t.Fatal("Close succeeded with every upload failing")
		}
		db = openLogLocal(t, faulty.New(inner), local)
		mustExec(t, db, "INSERT INTO t VALUES (2)")
		want := dumpT(t, db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := restoredRows(t, inner, "app.db"); got != want {
			t.Fatalf("the bucket holds\n%s\nwant\n%s", got, want)
		}
	})
	for _, dirty := range []bool{false, true} {
		t.Run(fmt.Sprintf("log moved on, dirty %v", dirty), func(t *testing.T) {
			inner := bucket.NewMemory()
			local := filepath.Join(t.TempDir(), "work.db")
			fb := faulty.New(inner)
			db := openLogLocal(t, fb, local)
			mustExec(t, db, "CREATE TABLE t(x)")
			mustFlush(t, db)
			if dirty {
				mustExec(t, db, "INSERT INTO t VALUES (1)")
				fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(errors.New("injected outage")))
				if err := db.Close(); err == nil {
					t.Fatal("Close succeeded with every upload failing")
				}
			} else if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			other, _ := openLog(t, faulty.New(inner), "app.db", "")
			mustExec(t, other, "INSERT INTO t VALUES (2)")
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
			db = openLogLocal(t, faulty.New(inner), local)
			defer db.Close()
			err := db.Ping()
			if dirty {
				if !errors.Is(err, driver.ErrDiverged) {
					t.Fatalf("local writes and a log that moved on: %v, want ErrDiverged", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpT(t, db); got != "2\n" {
				t.Fatalf("after the log moved on the working copy holds %q, want the other writer's row", got)
			}
		})
	}
}

// Under steady writes the WAL is checkpointed and restarted by the flushes
// that capture it, and no commit slips past the capture: no flush has to
// fall back to a new base, and the bucket ends with every row.
func TestLogSteadyWritesNoFallbackBase(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 1000, 64<<10)()
	fb := faulty.New(bucket.NewMemory())
	var bases atomic.Int64
	fb.InjectFunc(faulty.Upload, func(_ int, key string) (faulty.Fault, bool) {
		if key == "app.db" {
			bases.Add(1)
		}
		return faulty.Fault{}, false
	})
	db, c := openLog(t, fb, "app.db", "")
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	mustFlush(t, db)
	stop := make(chan struct{})
	done := make(chan error, 1)
	var inserted atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO t(v) VALUES (?)", strings.Repeat("w", 300)); err != nil {
				done <- err
				return
			}
			inserted.Add(1)
		}
	}()
	for range 40 {
		// Enough writes between flushes for the WAL to pass the
		// checkpoint size every few flushes, while the writer goes on.
		for n := inserted.Load(); inserted.Load() < n+50; {
			waitABit()
		}
		mustFlush(t, db)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustFlush(t, db)
	if got, _ := restoredRows(t, fb.Inner(), "app.db"); got != dumpT(t, db) {
		t.Fatal("the restored database differs from the writer's")
	}
	if n, st := bases.Load(), c.Stats(); n != 1+st.Compactions {
		t.Fatalf("%d bases uploaded with %d compactions: a flush fell back to a new base", n, st.Compactions)
	}
}
