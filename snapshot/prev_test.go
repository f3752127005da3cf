package snapshot_test

import (
	"errors"
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
