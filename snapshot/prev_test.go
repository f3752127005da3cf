package snapshot_test

import (
	"errors"
	"os"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// An object at KEY.prev that the driver did not write (by hand, by another
// program, an old database at app.db.prev) survives KEY's flushes: the
// flush fails with ErrForeignObject and writes nothing.
func TestKeepPreviousSparesForeignObject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		for _, md := range []map[string]string{
			nil,
			{snapshot.MetaSHA256: "0123"}, // a snapshot of another key
		} {
			src := newDB(t, "WAL")
			fill(t, src, 10)
			r1, err := snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{KeepPrevious: true, Force: true})
			if err != nil {
				t.Fatal(err)
			}
			foreign := upload(t, b, "app.db.prev", []byte("acknowledged, and not ours"), md)
			fill(t, src, 5)
			_, err = snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{
				KeepPrevious: true, IfMatch: r1.ETag, LastHash: r1.SnapshotHash,
			})
			if !errors.Is(err, snapshot.ErrForeignObject) {
				t.Fatalf("flush over a foreign app.db.prev = %v; want ErrForeignObject", err)
			}
			if a, err := b.Stat(ctx, "app.db.prev"); err != nil || a.ETag != foreign.ETag {
				t.Fatalf("app.db.prev was overwritten: %+v, %v", a, err)
			}
			if a, err := b.Stat(ctx, "app.db"); err != nil || a.ETag != r1.ETag {
				t.Fatalf("app.db changed although the flush failed: %+v, %v", a, err)
			}
		}
	})
}

// A foreign object that appears at KEY.prev between two flushes that know
// KEY.prev's ETag is caught by the copy's destination condition, where the
// bucket enforces it.
func TestKeepPreviousSparesForeignObjectBetweenFlushes(t *testing.T) {
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	fill(t, src, 10)
	opts := snapshot.FlushOptions{KeepPrevious: true}
	for range 2 {
		r, err := snapshot.Flush(ctx, src, b, "app.db", opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.IfMatch, opts.LastHash, opts.PrevETag = r.ETag, r.SnapshotHash, r.PrevETag
		fill(t, src, 1)
	}
	if opts.PrevETag == "" {
		t.Fatal("the second flush returned no PrevETag")
	}
	foreign := upload(t, b, "app.db.prev", []byte("not ours"), nil)
	if _, err := snapshot.Flush(ctx, src, b, "app.db", opts); !errors.Is(err, snapshot.ErrForeignObject) {
		t.Fatalf("flush = %v; want ErrForeignObject", err)
	}
	if a, err := b.Stat(ctx, "app.db.prev"); err != nil || a.ETag != foreign.ETag {
		t.Fatalf("app.db.prev was overwritten: %+v, %v", a, err)
	}
}

// With PrevETag known, keeping the previous snapshot costs the copy alone:
// no Stat of KEY.prev. A stale PrevETag (a copy whose flush failed after
// it) costs one Stat and is no conflict.
func TestKeepPreviousRequests(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	src := newDB(t, "WAL")
	fill(t, src, 10)
	opts := snapshot.FlushOptions{KeepPrevious: true}
	for range 2 {
		r, err := snapshot.Flush(ctx, src, fb, "app.db", opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.IfMatch, opts.LastHash, opts.PrevETag = r.ETag, r.SnapshotHash, r.PrevETag
		fill(t, src, 1)
	}
	stats := fb.Calls(faulty.Stat)
	r, err := snapshot.Flush(ctx, src, fb, "app.db", opts)
	if err != nil || !r.KeptPrevious {
		t.Fatalf("flush = %+v, %v", r, err)
	}
	if n := fb.Calls(faulty.Stat) - stats; n != 1 {
		t.Errorf("flush with a known PrevETag made %d Stats; want 1 (the upload's confirmation)", n)
	}
	opts.IfMatch, opts.LastHash = r.ETag, r.SnapshotHash // PrevETag is now stale
	fill(t, src, 1)
	r, err = snapshot.Flush(ctx, src, fb, "app.db", opts)
	if err != nil || !r.KeptPrevious {
		t.Fatalf("flush with a stale PrevETag = %+v, %v", r, err)
	}
}

// Upgrading from a release that recorded no key in the metadata: while KEY
// itself records none, a KEY.prev that is a snapshot (it has a SHA-256)
// but records no key is the previous copy of KEY, replaced once; once KEY
// records its key, such an object at KEY.prev is another database's.
func TestKeepPreviousAfterUpgrade(t *testing.T) {
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	fill(t, src, 10)
	f, err := snapshot.Take(ctx, src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Remove()
	// What an earlier release left: KEY and KEY.prev with a SHA-256 only.
	old := upload(t, b, "app.db", readAll(t, f.Path()), map[string]string{snapshot.MetaSHA256: f.Hash})
	upload(t, b, "app.db.prev", []byte("an older snapshot"), map[string]string{snapshot.MetaSHA256: "0123"})
	fill(t, src, 5)
	r, err := snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{KeepPrevious: true, IfMatch: old.ETag, LastHash: f.Hash})
	if err != nil || !r.KeptPrevious {
		t.Fatalf("the first flush after an upgrade: %+v, %v; want it to keep the previous snapshot", r, err)
	}
	// Now a legacy-looking object at KEY.prev is foreign.
	foreign := upload(t, b, "app.db.prev", []byte("a database of its own"), map[string]string{snapshot.MetaSHA256: "0456"})
	fill(t, src, 1)
	_, err = snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{KeepPrevious: true, IfMatch: r.ETag, LastHash: r.SnapshotHash})
	if !errors.Is(err, snapshot.ErrForeignObject) {
		t.Fatalf("flush over a legacy object beside a key that records itself: %v, want ErrForeignObject", err)
	}
	if a, err := b.Stat(ctx, "app.db.prev"); err != nil || a.ETag != foreign.ETag {
		t.Fatalf("app.db.prev was overwritten: %+v, %v", a, err)
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
