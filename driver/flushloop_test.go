//go:build cgo

package driver_test

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
)

// An unchanged database uploads nothing, counted at the bucket.
func TestIdleFlushCostsNoRequest(t *testing.T) {
	cb := faulty.New(bucket.NewMemory())
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
	before := cb.Calls(faulty.Any)
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
	if after := cb.Calls(faulty.Any); after != before {
		t.Fatalf("idle flushes and Close made %d bucket requests, want 0", after-before)
	}
	st := c.Stats()
	if st.Uploads != 1 || st.Skips < 6 {
		t.Fatalf("stats %+v", st)
	}
}

// The periodic loop uploads after writes and skips while idle.
func TestPeriodicFlush(t *testing.T) {
	cb := faulty.New(bucket.NewMemory())
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
	uploads, requests := c.Stats().Uploads, cb.Calls(faulty.Any)
	flushes := c.Stats().Flushes
	waitFor(t, "five more idle flushes", func() bool { return c.Stats().Flushes >= flushes+5 })
	if st := c.Stats(); st.Uploads != uploads || cb.Calls(faulty.Any) != requests {
		t.Fatalf("idle loop uploaded: uploads %d -> %d, requests %d -> %d", uploads, st.Uploads, requests, cb.Calls(faulty.Any))
	}
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	waitFor(t, "an upload of the new write", func() bool { return c.Stats().Uploads > uploads })
	got := restoreCount(t, cb.Inner(), "loop.db", "t")
	if got != 2 {
		t.Fatalf("bucket has %d rows, want 2", got)
	}
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
