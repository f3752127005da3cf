package snapshot_test

import (
	"errors"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// An upload that reports success without storing the snapshot, or after
// storing only part of it, must not make Flush return nil: the caller
// would treat writes as safe that the bucket does not have. Flush checks
// with a Stat; a Stat that fails leaves the upload unconfirmed, an error
// too.
func TestFlushConfirmsUpload(t *testing.T) {
	for _, tc := range []struct {
		op    faulty.Op
		fault faulty.Fault
	}{
		{faulty.Upload, faulty.Lie()},
		{faulty.Upload, faulty.TruncateSilently(-512)},
		{faulty.Upload, faulty.TruncateSilently(4096)},
		{faulty.Stat, faulty.Fail(nil)},
		{faulty.Stat, faulty.Lie()},
	} {
		t.Run(string(tc.op)+"/"+tc.fault.String(), func(t *testing.T) {
			inner := bucket.NewMemory()
			fb := faulty.New(inner)
			src := newDB(t, "WAL")
			fill(t, src, 200)
			base, err := snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fill(t, src, 100)
			rule := fb.Inject(tc.op, 1, tc.fault)
			res, err := snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash})
			if rule.Fired() != 1 {
				t.Fatalf("fault fired %d times", rule.Fired())
			}
			if err == nil {
				t.Fatalf("Flush through a %s %s returned nil (result %+v)", tc.op, tc.fault, res)
			}
			if !errors.Is(err, snapshot.ErrSnapshot) || errors.Is(err, snapshot.ErrConflict) {
				t.Fatalf("error %v: want a snapshot error that is not a conflict", err)
			}
			t.Log(err)
		})
	}
}

// A successful flush returns the ETag of the object the bucket holds.
func TestFlushResultETagIsTheBucketsETag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		src := newDB(t, "WAL")
		fill(t, src, 10)
		res, err := snapshot.Flush(ctx, src, b, "k", snapshot.FlushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.Stat(ctx, "k")
		if err != nil || st.ETag != res.ETag {
			t.Fatalf("result ETag %s, object %+v %v", res.ETag, st, err)
		}
	})
}
