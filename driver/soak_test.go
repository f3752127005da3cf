//go:build cgo

package driver_test

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// soakFor is how long each soak runs: a few seconds, or minutes with
// BUCKETSQLITE_LONG=1.
func soakFor() time.Duration {
	if long() {
		return 2 * time.Minute
	}
	return 3 * time.Second
}

// TestSoak runs writers, the background flush loop (10ms) and explicit
// flushes on one database for a while, while a verifier with its own
// bucket handle restores the latest snapshot over and over. Every row
// acknowledged before an explicit flush returned nil must be in every
// snapshot the verifier restores after that; snapshots pass
// integrity_check, hold each writer's rows as a gapless prefix, and never
// go back in time. The "faults" variant also fails, half-does and lies
// about a tenth of the bucket calls of flushes.
func TestSoak(t *testing.T) {
	type variant struct {
		name string
		// open returns the bucket the database writes through and an
		// independent handle on the same storage for the verifier.
		open func(t *testing.T) (write, read bucket.Bucket, fb *faulty.Bucket)
	}
	dir := func(t *testing.T) (bucket.Bucket, bucket.Bucket) {
		root := t.TempDir()
		return mustDir(t, root), mustDir(t, root)
	}
	variants := []variant{
		{"dir", func(t *testing.T) (bucket.Bucket, bucket.Bucket, *faulty.Bucket) {
			w, r := dir(t)
			return w, r, nil
		}},
		{"dir+faults", func(t *testing.T) (bucket.Bucket, bucket.Bucket, *faulty.Bucket) {
			w, r := dir(t)
			fb := faulty.New(w)
			return fb, r, fb
		}},
		{"s3", func(t *testing.T) (bucket.Bucket, bucket.Bucket, *faulty.Bucket) {
			srv := s3test.Start(t)
			name := srv.NewBucket(t, "")
			w, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Client: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			r, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Client: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			return w, r, nil
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			write, read, fb := v.open(t)
			soak(t, write, read, fb, rand.New(rand.NewPCG(seed(t), 4)))
		})
	}
}

func soak(t *testing.T, write, read bucket.Bucket, fb *faulty.Bucket, rng *rand.Rand) {
	const writers = 4
	cfg := driver.NewConfig()
	cfg.Key, cfg.FlushInterval, cfg.FlushTimeout = "soak.db", 10*time.Millisecond, time.Minute
	c, err := driver.NewConnector(cfg, driver.WithBucket(write))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	mustExec(t, db, "CREATE TABLE t(w INTEGER, seq INTEGER, PRIMARY KEY (w, seq))")
	if fb != nil {
		var mu sync.Mutex
		faults := []faulty.Fault{faulty.Fail(nil), faulty.FailAfter(nil), faulty.Lie(), faulty.Delay(time.Millisecond)}
		for _, op := range []faulty.Op{faulty.Upload, faulty.Copy, faulty.Stat} {
			fb.InjectFunc(op, func(int, string) (faulty.Fault, bool) {
				mu.Lock()
				defer mu.Unlock()
				return faults[rng.IntN(len(faults))], rng.IntN(10) == 0
			})
		}
	}

	var (
		acked      [writers]atomic.Int64 // highest acknowledged seq per writer, -1: none
		guaranteed atomic.Pointer[[writers]int64]
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		flushes    atomic.Int64
		flushErrs  atomic.Int64
		restores   atomic.Int64
		failed     atomic.Bool
	)
	none := [writers]int64{-1, -1, -1, -1}
	guaranteed.Store(&none)
	for w := range writers {
		acked[w].Store(-1)
		wg.Go(func() {
			for seq := int64(0); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Exec("INSERT INTO t(w, seq) VALUES (?, ?)", w, seq); err != nil {
					t.Errorf("writer %d: %v", w, err)
					failed.Store(true)
					return
				}
				acked[w].Store(seq)
			}
		})
	}
	wg.Go(func() { // explicit flushes
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			var before [writers]int64
			for w := range writers {
				before[w] = acked[w].Load()
			}
			if _, err := driver.Flush(ctx, db); err != nil {
				flushErrs.Add(1)
				if fb == nil || errors.Is(err, snapshot.ErrConflict) {
					t.Errorf("flush: %v", err)
					failed.Store(true)
				}
				continue
			}
			flushes.Add(1)
			guaranteed.Store(&before)
		}
	})
	wg.Go(func() { // the verifier, with its own bucket handle
		path := filepath.Join(t.TempDir(), "verify.db")
		last := none
		for {
			select {
			case <-stop:
				return
			default:
			}
			g := *guaranteed.Load()
			if err := verifySoak(path, read, g, &last); err != nil {
				t.Errorf("verifier: %v", err)
				failed.Store(true)
				return
			}
			restores.Add(1)
		}
	})

	// Run for soakFor, and then until the soak has done enough to prove
	// something (on a loaded machine a few seconds may hold only a
	// handful of flushes): a safety net bounds it, not a timing.
	time.Sleep(soakFor())
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline) && !failed.Load(); time.Sleep(10 * time.Millisecond) {
		if flushes.Load() >= 5 && restores.Load() >= 2 && (fb == nil || flushErrs.Load() >= 1) {
			break
		}
	}
	close(stop)
	wg.Wait()
	if fb != nil {
		fb.Clear()
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := c.Stats()
	var total int64
	for w := range writers {
		total += acked[w].Load() + 1
	}
	t.Logf("%d rows acknowledged; %d explicit flushes ok, %d failed; %d uploads, %d skips, %d failures in all; %d verified restores",
		total, flushes.Load(), flushErrs.Load(), st.Uploads, st.Skips, st.Failures, restores.Load())
	if failed.Load() {
		return
	}
	// After Close, every acknowledged row is in the bucket.
	var all [writers]int64
	for w := range writers {
		all[w] = acked[w].Load()
	}
	last := none
	if err := verifySoak(filepath.Join(t.TempDir(), "final.db"), read, all, &last); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if flushes.Load() == 0 || restores.Load() == 0 || total == 0 {
		t.Fatal("the soak did too little to prove anything")
	}
	if fb != nil && flushErrs.Load() == 0 {
		t.Fatal("no flush met a fault")
	}
}

// verifySoak restores the soak's snapshot and checks it against g, the
// acknowledged rows it must hold, and last, what the previous restore
// held (updated).
func verifySoak(path string, b bucket.Bucket, g [4]int64, last *[4]int64) error {
	info, err := snapshot.RestoreFile(ctx, b, "soak.db", path, snapshot.RestoreOptions{})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !info.Found {
		for _, v := range g {
			if v >= 0 {
				return errors.New("no snapshot, though a flush succeeded")
			}
		}
		return nil
	}
	v, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer v.Close()
	for w := range 4 {
		var n, hi int64
		if err := v.QueryRow("SELECT count(*), coalesce(max(seq), -1) FROM t WHERE w = ?", w).Scan(&n, &hi); err != nil {
			return err
		}
		switch {
		case n != hi+1:
			return fmt.Errorf("writer %d: %d rows up to seq %d: a gap", w, n, hi)
		case hi < g[w]:
			return fmt.Errorf("writer %d: snapshot ends at seq %d, but seq %d was acknowledged before a flush returned nil", w, hi, g[w])
		case hi < last[w]:
			return fmt.Errorf("writer %d: snapshot went back from seq %d to %d", w, last[w], hi)
		}
		last[w] = hi
	}
	return nil
}
