package snapshot_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/internal/s3test"
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

// A bucket that does not exist is an error, not "no snapshot yet": that
// would start an empty database against a typo.
func TestRestoreMissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	b, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: "no-such-bucket-anywhere", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	dst := newDB(t, "WAL")
	ok, err := snapshot.Restore(ctx, dst, b, "app.db")
	if err == nil || ok || !strings.Contains(err.Error(), "bucket") {
		t.Fatalf("Restore from a missing bucket = %v, %v; want an error about the bucket", ok, err)
	}
	info, err := snapshot.RestoreFile(ctx, b, "app.db", filepath.Join(t.TempDir(), "x.db"), snapshot.RestoreOptions{})
	if err == nil || info.Found {
		t.Fatalf("RestoreFile from a missing bucket = %+v, %v", info, err)
	}
	// A bucket that exists, without the snapshot: not found, no error.
	fb := faulty.New(bucket.NewMemory())
	if ok, err := snapshot.Restore(ctx, dst, fb, "app.db"); ok || err != nil {
		t.Fatalf("Restore of a missing snapshot = %v, %v", ok, err)
	}
	if fb.Calls(faulty.List) != 1 {
		t.Fatalf("%d List calls; want 1", fb.Calls(faulty.List))
	}
	// The List failing is an error too.
	fb.Inject(faulty.List, 1, faulty.Fail(nil))
	if ok, err := snapshot.Restore(ctx, dst, fb, "app.db"); ok || !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Restore with a failing List = %v, %v", ok, err)
	}
}
