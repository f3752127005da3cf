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
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// hangBound ends the calls a Hang fault blocks: the mechanism that ends
// them, not a timing assertion.
const hangBound = 300 * time.Millisecond

// faults are the faults each bucket call of a flush or restore is tried
// with.
var faults = []faulty.Fault{
	faulty.Fail(nil),
	faulty.FailAfter(nil),
	faulty.Delay(time.Millisecond),
	faulty.Hang(),
	faulty.Truncate(4096),
	faulty.Truncate(-1),
	faulty.TruncateSilently(4096),
	faulty.TruncateSilently(-512),
	faulty.Lie(),
}

// honest reports whether a call under f can succeed without lying: a
// delay; and a copy to KEY.prev that lies, which a flush does not check
// (it would cost a request per flush for a backup copy).
func honest(op faulty.Op, f faulty.Fault) bool {
	s := f.String()
	return strings.HasPrefix(s, "delay") || op == faulty.Copy && (s == "lie" || strings.HasPrefix(s, "truncate-silently"))
}

// openFaulty opens a database on key in a faulty memory bucket, with no
// background flushing.
func openFaulty(t *testing.T, fb *faulty.Bucket, key, local string) (*sql.DB, *driver.Connector) {
	t.Helper()
	cfg := driver.NewConfig()
	cfg.Key, cfg.FlushInterval, cfg.FlushTimeout, cfg.Local = key, 0, hangBound, local
	c, err := driver.NewConnector(cfg, driver.WithBucket(fb))
	if err != nil {
		t.Fatal(err)
	}
	return sql.OpenDB(c), c
}

// rowsOf returns the ids in table t of db, as one string.
func rowsOf(t testing.TB, db *sql.DB) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow("SELECT group_concat(x, ',') FROM (SELECT x FROM t ORDER BY x)").Scan(&s); err != nil {
		t.Fatalf("read rows: %v", err)
	}
	return s.String
}

// bucketRows restores key from b into a scratch file, checks its
// integrity, and returns its rows (or the restore's error).
func bucketRows(t testing.TB, b bucket.Bucket, key string) (string, error) {
	t.Helper()
	db, err := restoreScratch(t, b, key)
	if err != nil {
		return "", err
	}
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("%s fails integrity_check: %s %v", key, ok, err)
	}
	return rowsOf(t, db), nil
}

// insert adds n rows to t, numbered on from what is there.
func insert(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	for range n {
		mustExec(t, db, "INSERT INTO t SELECT coalesce(max(x), -1) + 1 FROM t")
	}
}

// wantSound checks that the bucket holds a sound snapshot of one of the
// states in ok, or, after a fault that tears writes, a torn KEY that
// restores refuse, next to a KEY.prev holding prev.
func wantSound(t *testing.T, b bucket.Bucket, f faulty.Fault, prev string, ok ...string) {
	t.Helper()
	got, err := bucketRows(t, b, "app.db")
	if err != nil {
		if !errors.Is(err, snapshot.ErrCorrupt) || !strings.HasPrefix(f.String(), "truncate") {
			t.Fatalf("the bucket's snapshot does not restore: %v", err)
		}
		if p, err := bucketRows(t, b, "app.db.prev"); err != nil || p != prev {
			t.Fatalf("torn KEY, and KEY.prev does not hold the previous snapshot: %v", err)
		}
		return
	}
	for _, s := range ok {
		if got == s {
			return
		}
	}
	t.Fatalf("the bucket holds a state that was never acknowledged nor being flushed: %q", got)
}

// injectOnce injects f into the first call of op on the snapshot's own
// key, app.db: a flush's Stat of KEY.prev (when it does not know that
// object's ETag) is not the Stat that confirms its upload.
func injectOnce(fb *faulty.Bucket, op faulty.Op, f faulty.Fault) *faulty.Rule {
	seen := false
	return fb.InjectFunc(op, func(_ int, key string) (faulty.Fault, bool) {
		if key != "app.db" || seen {
			return faulty.Fault{}, false
		}
		seen = true
		return f, true
	})
}

// flushedThenWritten opens a database on a faulty memory bucket, writes
// and flushes 300 rows, then writes n more without flushing. It returns
// the rows in the bucket (before) and in the database (want).
func flushedThenWritten(t *testing.T, n int) (inner *bucket.Memory, fb *faulty.Bucket, db *sql.DB, c *driver.Connector, before, want string) {
	t.Helper()
	inner = bucket.NewMemory()
	fb = faulty.New(inner)
	db, c = openFaulty(t, fb, "app.db", "")
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY)")
	insert(t, db, 300)
	if _, err := driver.Flush(ctx, db); err != nil {
		t.Fatal(err)
	}
	before = rowsOf(t, db)
	insert(t, db, n)
	return inner, fb, db, c, before, rowsOf(t, db)
}

// TestDriverFlushFaults runs an explicit flush through each fault at each
// bucket call it makes (KEY.prev copy, upload, confirming Stat): the flush
// says so when it fails, the bucket holds a sound acknowledged state, the
// database keeps every committed write, and once the faults stop the next
// flush puts everything in the bucket.
func TestDriverFlushFaults(t *testing.T) {
	for _, op := range []faulty.Op{faulty.Copy, faulty.Upload, faulty.Stat} {
		for _, f := range faults {
			t.Run(fmt.Sprintf("%s/%s", op, f), func(t *testing.T) {
				inner, fb, db, c, before, want := flushedThenWritten(t, 200)

				rule := injectOnce(fb, op, f)
				fctx, cancel := context.WithTimeout(ctx, hangBound)
				_, err := driver.Flush(fctx, db)
				cancel()
				fb.Clear()
				if rule.Fired() != 1 {
					t.Fatalf("the fault fired %d times", rule.Fired())
				}
				t.Logf("flush: %v", err)
				switch {
				case honest(op, f) && err != nil:
					t.Fatalf("flush = %v; want success", err)
				case !honest(op, f) && err == nil:
					t.Fatal("flush returned nil: the fault went unnoticed")
				case err != nil && !strings.Contains(err.Error(), "app.db"):
					t.Errorf("error does not name the snapshot: %v", err)
				}
				if rowsOf(t, db) != want {
					t.Fatal("the database lost committed writes")
				}
				if err == nil {
					wantSound(t, inner, f, before, want)
				} else {
					wantSound(t, inner, f, before, before, want)
				}

				insert(t, db, 1)
				want = rowsOf(t, db)
				if _, err := driver.Flush(ctx, db); err != nil {
					t.Fatalf("flush after the faults stopped: %v", err)
				}
				if got, err := bucketRows(t, inner, "app.db"); err != nil || got != want {
					t.Fatalf("after the faults stopped the bucket lacks writes: %v", err)
				}
				if err := db.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if st := c.Stats(); st.Conflicted {
					t.Fatalf("the database thinks it conflicted: %+v", st)
				}
			})
		}
	}
}

// TestDriverCloseFaults makes the final flush of db.Close fail: Close
// says so and names the working copy, which keeps every committed write;
// the bucket keeps a sound acknowledged snapshot.
func TestDriverCloseFaults(t *testing.T) {
	for _, op := range []faulty.Op{faulty.Copy, faulty.Upload, faulty.Stat} {
		for _, f := range faults {
			if honest(op, f) {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", op, f), func(t *testing.T) {
				inner, fb, db, c, before, want := flushedThenWritten(t, 20)
				local := c.Stats().LocalPath
				rule := injectOnce(fb, op, f)
				err := db.Close()
				if rule.Fired() != 1 {
					t.Fatalf("the fault fired %d times", rule.Fired())
				}
				t.Logf("close: %v", err)
				if err == nil || !strings.Contains(err.Error(), local) {
					t.Fatalf("Close = %v; want an error naming the working copy %s", err, local)
				}
				t.Cleanup(func() { os.RemoveAll(filepath.Dir(local)) })
				kept, err := sql.Open("sqlite3", local)
				if err != nil {
					t.Fatal(err)
				}
				defer kept.Close()
				if rowsOf(t, kept) != want {
					t.Fatal("the kept working copy lacks committed writes")
				}
				wantSound(t, inner, f, before, before, want)
			})
		}
	}
}

// TestDriverRestoreFaults opens a database through each fault on the
// restore's download: the first query fails with an error naming the
// snapshot (or succeeds honestly), the bucket is untouched, and the next
// query, once the faults stop, restores everything.
func TestDriverRestoreFaults(t *testing.T) {
	inner := bucket.NewMemory()
	seed, _ := openFaulty(t, faulty.New(inner), "app.db", "")
	mustExec(t, seed, "CREATE TABLE t(x INTEGER PRIMARY KEY)")
	insert(t, seed, 300)
	want := rowsOf(t, seed)
	if err := seed.Close(); err != nil {
		t.Fatal(err)
	}
	orig, err := inner.Stat(ctx, "app.db")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range faults {
		t.Run(f.String(), func(t *testing.T) {
			fb := faulty.New(inner)
			db, _ := openFaulty(t, fb, "app.db", "")
			rule := fb.Inject(faulty.Download, 1, f)
			pctx, cancel := context.WithTimeout(ctx, hangBound)
			err := db.PingContext(pctx)
			cancel()
			if rule.Fired() != 1 {
				t.Fatalf("the fault fired %d times", rule.Fired())
			}
			t.Logf("ping: %v", err)
			switch {
			case honest(faulty.Download, f) && err != nil:
				t.Fatalf("Ping = %v; want success", err)
			case !honest(faulty.Download, f) && err == nil:
				t.Fatal("Ping returned nil: the fault went unnoticed")
			case err != nil && !strings.Contains(err.Error(), "app.db"):
				t.Errorf("error does not name the snapshot: %v", err)
			}
			fb.Clear()
			if got := rowsOf(t, db); got != want {
				t.Fatal("restored database differs")
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if st, err := inner.Stat(ctx, "app.db"); err != nil || st.ETag != orig.ETag {
				t.Fatal("the bucket's snapshot changed")
			}
		})
	}
}

// A persistent working copy whose upload landed although its flush failed
// (and then its process stopped, or its final flush failed too) is not
// "diverged" from the bucket: the bucket holds the working copy's own
// upload. Reopening keeps every write and flushes it.
func TestLocalUnconfirmedUploadIsNotDivergence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault faulty.Fault
	}{
		{"landed", faulty.FailAfter(nil)},
		{"torn", faulty.Truncate(4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := bucket.NewMemory()
			fb := faulty.New(inner)
			local := filepath.Join(t.TempDir(), "work.db")
			db, _ := openFaulty(t, fb, "app.db", local)
			mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY)")
			insert(t, db, 300)
			if _, err := driver.Flush(ctx, db); err != nil {
				t.Fatal(err)
			}
			insert(t, db, 100)
			r := fb.Inject(faulty.Upload, 1, tc.fault)
			if _, err := driver.Flush(ctx, db); err == nil || r.Fired() != 1 {
				t.Fatalf("flush through %s: %v", tc.fault, err)
			}
			insert(t, db, 2)
			want := rowsOf(t, db)
			fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(nil))
			if err := db.Close(); err == nil {
				t.Fatal("Close with failing uploads returned nil")
			}
			fb.Clear()

			db, _ = openFaulty(t, fb, "app.db", local)
			if err := db.Ping(); err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if got := rowsOf(t, db); got != want {
				t.Fatal("the reopened working copy lacks writes")
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := bucketRows(t, inner, "app.db"); err != nil || got != want {
				t.Fatalf("the bucket lacks writes after reopening: %v", err)
			}
		})
	}
}

// TestDriverLocalRestoreFaults reopens a persistent working copy, clean
// or with unflushed writes, through each fault on the Stat that
// reconciles it with the bucket: the open fails with an error or succeeds
// honestly (a Stat that answers without an ETag is a failure, tried
// again), the working copy never loses a write, the bucket is not
// changed by a failed open, and once the faults stop the database opens
// with everything and flushes it.
func TestDriverLocalRestoreFaults(t *testing.T) {
	for _, dirty := range []bool{false, true} {
		for _, f := range faults {
			t.Run(fmt.Sprintf("dirty=%v/%s", dirty, f), func(t *testing.T) {
				inner := bucket.NewMemory()
				fb := faulty.New(inner)
				local := filepath.Join(t.TempDir(), "work.db")
				db, _ := openFaulty(t, fb, "app.db", local)
				mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY)")
				insert(t, db, 300)
				if _, err := driver.Flush(ctx, db); err != nil {
					t.Fatal(err)
				}
				if dirty {
					insert(t, db, 5)
					fb.Inject(faulty.Any, faulty.Every, faulty.Fail(nil)) // Close cannot flush
				}
				want := rowsOf(t, db)
				if err := db.Close(); (err != nil) != dirty {
					t.Fatalf("Close: %v", err)
				}
				fb.Clear()
				orig, err := inner.Stat(ctx, "app.db")
				if err != nil {
					t.Fatal(err)
				}

				db, _ = openFaulty(t, fb, "app.db", local)
				rule := fb.Inject(faulty.Stat, 1, f)
				pctx, cancel := context.WithTimeout(ctx, hangBound)
				err = db.PingContext(pctx)
				cancel()
				if rule.Fired() != 1 {
					t.Fatalf("the fault fired %d times", rule.Fired())
				}
				t.Logf("ping: %v", err)
				lying := f.String() == "lie" || strings.HasPrefix(f.String(), "truncate-silently")
				switch {
				case honest(faulty.Stat, f) && err != nil:
					t.Fatalf("Ping = %v; want success", err)
				case !honest(faulty.Stat, f) && !lying && err == nil:
					t.Fatal("Ping returned nil: the fault went unnoticed")
				case lying && (err == nil || errors.Is(err, driver.ErrDiverged)):
					// An answer without an ETag is no answer: the open
					// fails, to be tried again; it is not a divergence
					// that would need a person to resolve it.
					t.Fatalf("Ping with a lying Stat = %v; want a failure that is not ErrDiverged", err)
				case err != nil && !strings.Contains(err.Error(), "app.db") && !strings.Contains(err.Error(), local):
					t.Errorf("error names neither the snapshot nor the working copy: %v", err)
				}
				if err != nil {
					if st, serr := inner.Stat(ctx, "app.db"); serr != nil || st.ETag != orig.ETag {
						t.Fatal("a failed open changed the bucket")
					}
				}
				fb.Clear()
				if got := rowsOf(t, db); got != want {
					t.Fatal("the working copy lost writes")
				}
				if err := db.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if got, err := bucketRows(t, inner, "app.db"); err != nil || got != want {
					t.Fatalf("the bucket lacks writes after Close: %v", err)
				}
			})
		}
	}
}
