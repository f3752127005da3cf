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
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// A checkpoint between opening and the first flush (here one the
// application asks for; SQLite's own when the last connection closes is
// the same) must not fold writes into the database file where no capture
// looks: the first flush would then ship nothing, report success, and
// the bucket would miss acknowledged writes. The driver pins the working
// copy's state as it opens, so no frame leaves the WAL uncaptured.
func TestLogCheckpointBeforeFirstFlush(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	db, _ := openLog(t, fb, "app.db", "")
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	for i := range 200 {
		mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(i), 40))
	}
	mustFlush(t, db) // the base
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _ = openLog(t, fb, "app.db", "")
	defer db.Close()
	mustExec(t, db, "UPDATE t SET v = 'changed' WHERE x = 7")
	mustExec(t, db, "PRAGMA wal_checkpoint(TRUNCATE)")
	mustFlush(t, db)
	if got, _ := restoredRows(t, fb.Inner(), "app.db"); got != dumpT(t, db) {
		t.Fatal("after a checkpoint before the first flush, the restored database differs from the writer's")
	}
	mustExec(t, db, "UPDATE t SET v = 'changed again' WHERE x = 150")
	mustFlush(t, db)
	if got, _ := restoredRows(t, fb.Inner(), "app.db"); got != dumpT(t, db) {
		t.Fatal("the restored database differs from the writer's")
	}
}

// In a rollback-journal mode there is no WAL to read the changes from:
// each flush compares a snapshot with the image the bucket holds, page
// by page, and still uploads one small delta for a small change;
// compaction and a restart on a persistent working copy work as in WAL
// mode.
func TestLogRollbackJournal(t *testing.T) {
	for _, mode := range []string{"DELETE", "TRUNCATE", "PERSIST"} {
		t.Run(mode, func(t *testing.T) {
			inner := bucket.NewMemory()
			fb := faulty.New(inner)
			local := filepath.Join(t.TempDir(), "work.db")
			params := "&_journal_mode=" + mode + "&local=" + local
			db, c := openLog(t, fb, "app.db", params)
			var jm string
			if err := db.QueryRow("PRAGMA journal_mode").Scan(&jm); err != nil || !strings.EqualFold(jm, mode) {
				t.Fatalf("journal_mode %q, %v; want %s", jm, err, mode)
			}
			mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
			mustExec(t, db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000) "+
				"INSERT INTO t(v) SELECT printf('%d-%s', i, hex(randomblob(40))) FROM n")
			if base := mustFlush(t, db); !base.Uploaded || base.BytesWritten < 100<<10 {
				t.Fatalf("first flush: %+v; want a base of the whole database", base)
			}
			for round := 1; round <= 3; round++ {
				mustExec(t, db, "UPDATE t SET v = ? WHERE x = ?", fmt.Sprint("round ", round), round*7)
				puts := fb.Calls(faulty.Upload)
				res := mustFlush(t, db)
				if !res.Uploaded || res.BytesWritten > 64<<10 || fb.Calls(faulty.Upload)-puts != 1 {
					t.Fatalf("round %d: %+v with %d uploads; want one small delta", round, res, fb.Calls(faulty.Upload)-puts)
				}
				if got, info := restoredRows(t, inner, "app.db"); got != dumpT(t, db) || info.Seq != uint64(round) {
					t.Fatalf("round %d: restored through %d, equal %v", round, info.Seq, got == dumpT(t, db))
				}
			}
			if st := c.Stats(); st.Deltas != 3 || st.Seq != 3 {
				t.Fatalf("stats %+v: want 3 deltas", st)
			}
			// Half the database rewritten: a compaction's worth, shipped
			// as one new base.
			mustExec(t, db, "UPDATE t SET v = v || 'x' WHERE x % 2 = 0")
			mustFlush(t, db)
			if got, _ := restoredRows(t, inner, "app.db"); got != dumpT(t, db) {
				t.Fatal("after a large change: the restored database differs")
			}
			if st := c.Stats(); st.Compactions != 1 || st.Deltas != 3 {
				t.Fatalf("after a large change: stats %+v; want one new base, no fourth delta", st)
			}
			// A clean restart goes on with deltas.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, _ = openLog(t, fb, "app.db", params)
			defer db.Close()
			mustExec(t, db, "DELETE FROM t WHERE x = 3")
			res := mustFlush(t, db)
			if !res.Uploaded || res.BytesWritten > 64<<10 {
				t.Fatalf("after a restart: %+v; want one small delta", res)
			}
			if got, _ := restoredRows(t, inner, "app.db"); got != dumpT(t, db) {
				t.Fatal("after a restart: the restored database differs")
			}
			if st, _ := driver.GetStats(db); st.Deltas != 1 {
				t.Fatalf("after a restart: stats %+v; want one delta", st)
			}
		})
	}
}

// A persistent working copy that restarts ahead of the bucket (here after
// a final flush that failed) ships what the bucket lacks as one delta,
// found page by page against the page checksums kept beside it, not as a
// new base; with those checksums damaged or gone it uploads a base, as
// before. Either way the bucket ends with every row.
func TestLogLocalAheadShipsDelta(t *testing.T) {
	for _, damage := range []string{"none", "flipped", "removed"} {
		t.Run(damage, func(t *testing.T) {
			inner := bucket.NewMemory()
			local := filepath.Join(t.TempDir(), "work.db")
			fb := faulty.New(inner)
			db := openLogLocal(t, fb, local)
			mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
			mustExec(t, db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000) "+
				"INSERT INTO t(v) SELECT printf('%d-%s', i, hex(randomblob(40))) FROM n")
			mustFlush(t, db)
			mustExec(t, db, "UPDATE t SET v = 'ahead' WHERE x = 1000")
			fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(errors.New("injected outage")))
			if err := db.Close(); err == nil {
				t.Fatal("Close succeeded with every upload failing")
			}
			sums := local + "-bucketsqlite.sums"
			switch damage {
			case "flipped":
				data, err := os.ReadFile(sums)
				if err != nil {
					t.Fatal(err)
				}
				data[len(data)/2] ^= 1
				if err := os.WriteFile(sums, data, 0o600); err != nil {
					t.Fatal(err)
				}
			case "removed":
				if err := os.Remove(sums); err != nil {
					t.Fatal(err)
				}
			}
			db = openLogLocal(t, faulty.New(inner), local)
			defer db.Close()
			// The open starts a flush of the pending writes in the
			// background; this one waits for it, or makes it.
			mustFlush(t, db)
			st, err := driver.GetStats(db)
			if err != nil {
				t.Fatal(err)
			}
			if want := damage == "none"; st.Uploads != 1 || (st.BytesUploaded < 64<<10) != want {
				t.Fatalf("after restarting ahead: %d uploads, %d bytes; want one small delta: %v", st.Uploads, st.BytesUploaded, want)
			}
			if got, _ := restoredRows(t, inner, "app.db"); got != dumpT(t, db) {
				t.Fatal("the restored database differs from the working copy")
			}
			// And the log goes on.
			mustExec(t, db, "UPDATE t SET v = 'after' WHERE x = 5")
			if res := mustFlush(t, db); res.BytesWritten > 64<<10 {
				t.Fatalf("the next flush: %+v; want a small delta", res)
			}
			if got, _ := restoredRows(t, inner, "app.db"); got != dumpT(t, db) {
				t.Fatal("the restored database differs from the working copy")
			}
		})
	}
}

// A base replaced by someone else (here bucketsqlite compact's
// snapshot.Compact) makes the writer's own compactions fail their
// conditional write until it reopens. The writer's deltas still chain
// onto that base, so nothing is lost; and a failed compaction waits for
// another compaction's worth of deltas before it tries again, rather than
// snapshotting the whole database on every flush.
func TestLogCompactionConflictBacksOff(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 4, 256<<10)()
	inner := bucket.NewMemory()
	var logs logRecorder
	cfg, err := driver.ParseDSN("mem://unused/app.db?flush_interval=0&sync=log")
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(inner), driver.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	mustFlush(t, db)
	for i := range 2 {
		mustExec(t, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("before ", i))
		mustFlush(t, db)
	}
	res, err := snapshot.Compact(context.Background(), inner, "app.db", snapshot.CompactOptions{})
	if err != nil || !res.Compacted {
		t.Fatalf("compact: %+v, %v", res, err)
	}
	const flushes = 12
	for i := range flushes {
		mustExec(t, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("after ", i))
		mustFlush(t, db)
		if got, _ := restoredRows(t, inner, "app.db"); got != dumpT(t, db) {
			t.Fatalf("flush %d after the compaction: the restored database differs from the writer's", i)
		}
	}
	attempts := strings.Count(logs.String(), "compaction failed")
	if attempts == 0 || attempts > flushes/4 {
		t.Fatalf("%d failed compactions in %d flushes after another process compacted; want between 1 and %d", attempts, flushes, flushes/4)
	}
}

// A delta whose upload landed although the flush was told it failed is
// sent again; its If-None-Match then fails, and one Stat tells it is ours.
// A Stat that answers without an ETag (a lying gateway) has not told
// anything: that flush fails, not as a conflict, and the next one
// recognises the delta.
func TestLogResentDeltaStatLies(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	db, _ := openLog(t, fb, "app.db", "")
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x)")
	mustFlush(t, db)
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	fb.Inject(faulty.Upload, 1, faulty.FailAfter(nil))
	if _, err := driver.Flush(context.Background(), db); err == nil {
		t.Fatal("a flush whose upload was told it failed succeeded")
	}
	lie := fb.Inject(faulty.Stat, 1, faulty.Lie())
	_, err := driver.Flush(context.Background(), db)
	if err == nil || errors.Is(err, snapshot.ErrConflict) || lie.Fired() != 1 {
		t.Fatalf("the resend with a lying Stat: %v (fired %d); want an error that is not a conflict", err, lie.Fired())
	}
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	mustFlush(t, db)
	if got, _ := restoredRows(t, fb.Inner(), "app.db"); got != dumpT(t, db) {
		t.Fatal("the bucket lacks acknowledged rows")
	}
}
