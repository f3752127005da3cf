package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// hangBound ends calls that a Hang fault blocks. It is the mechanism that
// ends them, not a timing assertion.
const hangBound = 200 * time.Millisecond

// flushFaults are the faults every step of a flush is tried with, and
// whether the flush must then report an error. A delay is the only one a
// flush can honestly absorb; Copy's lie (KEY.prev not written) is
// undetectable without an extra request and is expected to succeed (see
// TestFlushFaults).
func flushFaults(size int64) []faulty.Fault {
	return []faulty.Fault{
		faulty.Fail(nil),
		faulty.FailAfter(nil),
		faulty.Delay(time.Millisecond),
		faulty.Hang(),
		faulty.Truncate(size / 2),
		faulty.Truncate(-1),
		faulty.TruncateSilently(size / 2),
		faulty.TruncateSilently(-512),
		faulty.Lie(),
	}
}

// content is a database's rows, for comparing states.
func content(t testing.TB, c *sqlite3.SQLiteConn) string {
	t.Helper()
	return strings.Join(rows(t, c, "SELECT id || ':' || v FROM t ORDER BY id"), ",")
}

// restored restores key from b into a scratch database and returns its
// content, or the restore's error ("" and nil when there is no object).
func restored(t testing.TB, b bucket.Bucket, key string) (string, error) {
	t.Helper()
	dst := newDB(t, "DELETE")
	ok, err := snapshot.Restore(ctx, dst, b, key)
	if err != nil || !ok {
		return "", err
	}
	if got := rows(t, dst, "PRAGMA integrity_check"); len(got) != 1 || got[0] != "ok" {
		t.Fatalf("restored %s fails integrity_check: %v", key, got)
	}
	return content(t, dst), nil
}

// TestFlushFaults fails each bucket call of a flush with each fault and
// checks the promise: the flush reports an error (unless it could honestly
// succeed), the bucket still holds a sound snapshot of an acknowledged
// state, the source database keeps every committed write, and once the
// faults stop the next flush succeeds and the bucket holds everything.
func TestFlushFaults(t *testing.T) {
	steps := []flushStep{
		{faulty.Copy, false},
		{faulty.Upload, false},
		{faulty.Stat, false},
		{faulty.Upload, true},
		{faulty.Stat, true},
	}
	probe := newDB(t, "WAL")
	fill(t, probe, 300)
	pf, err := snapshot.Take(ctx, probe, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	size := pf.Size
	pf.Remove()

	var srv *s3test.Server
	for _, be := range []string{"mem", "s3"} {
		if be == "s3" {
			srv = s3test.Start(t)
		}
		newInner := func(t *testing.T) bucket.Bucket {
			if be == "mem" {
				return bucket.NewMemory()
			}
			b, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: srv.NewBucket(t, ""), Client: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		t.Run(be, func(t *testing.T) { flushFaultMatrix(t, steps, size, newInner) })
	}
}

type flushStep struct {
	op    faulty.Op
	first bool // the first flush to the key (If-None-Match, nothing to keep)
}

func flushFaultMatrix(t *testing.T, steps []flushStep, size int64, newInner func(*testing.T) bucket.Bucket) {
	var err error
	for _, st := range steps {
		for _, fault := range flushFaults(size) {
			name := fmt.Sprintf("%s/%s", st.op, fault)
			if st.first {
				name = "first-" + name
			}
			t.Run(name, func(t *testing.T) {
				inner := newInner(t)
				fb := faulty.New(inner)
				tmp := t.TempDir()
				src := newDB(t, "WAL")
				fill(t, src, 200)
				var base snapshot.Result
				before := ""
				if !st.first {
					base, err = snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{TempDir: tmp})
					if err != nil {
						t.Fatal(err)
					}
					before = content(t, src)
				}
				fill(t, src, 100)
				want := content(t, src)

				rule := fb.Inject(st.op, 1, fault)
				if st.op == faulty.Stat {
					// The Stat that confirms the upload, not the one
					// that looks at KEY.prev first.
					rule.Remove()
					seen := false
					rule = fb.InjectFunc(faulty.Stat, func(_ int, key string) (faulty.Fault, bool) {
						hit := key == "k" && !seen
						seen = seen || hit
						return fault, hit
					})
				}
				fctx, cancel := context.WithTimeout(ctx, hangBound)
				res, err := snapshot.Flush(fctx, src, fb, "k", snapshot.FlushOptions{
					TempDir: tmp, KeepPrevious: true, IfMatch: base.ETag, LastHash: base.SnapshotHash,
				})
				cancel()
				fb.Clear()
				if rule.Fired() != 1 {
					t.Fatalf("the fault fired %d times; the flush never made the call", rule.Fired())
				}
				undetectable := st.op == faulty.Copy && (fault.String() == "lie" || strings.HasPrefix(fault.String(), "truncate-silently"))
				honest := fault.String() == faulty.Delay(time.Millisecond).String() || undetectable
				switch {
				case honest && err != nil:
					t.Fatalf("flush through %s = %v; want success", fault, err)
				case !honest && err == nil:
					t.Fatalf("flush through %s returned nil: the fault went unnoticed", fault)
				}
				t.Logf("flush: %v", err)
				if err != nil && !errors.Is(err, snapshot.ErrSnapshot) {
					t.Errorf("error %v does not match ErrSnapshot", err)
				}
				if got := content(t, src); got != want {
					t.Fatal("the source database lost committed writes")
				}
				assertEmptyDir(t, tmp)

				// The bucket holds a sound snapshot of an acknowledged
				// state: the new one after a success; the new or the old
				// one after a failure. Only a backend that tears writes
				// (Truncate) can leave a torn KEY, and then KEY.prev
				// holds the old state.
				got, rerr := restored(t, inner, "k")
				switch {
				case err == nil && (rerr != nil || got != want):
					t.Fatalf("flush succeeded but the bucket holds another state (restore error %v)", rerr)
				case rerr == nil && got != want && got != before:
					t.Fatalf("the bucket holds a state that was never flushed")
				case rerr != nil:
					if !errors.Is(rerr, snapshot.ErrCorrupt) || !strings.HasPrefix(fault.String(), "truncate") {
						t.Fatalf("restore after the fault: %v", rerr)
					}
					if !st.first {
						if prev, err := restored(t, inner, "k.prev"); err != nil || prev != before {
							t.Fatalf("KEY is torn and KEY.prev does not hold the previous snapshot: %v", err)
						}
					}
				}

				// The faults stop: the next flush, with what the caller
				// knows, succeeds and the bucket holds every write.
				fill(t, src, 1)
				want = content(t, src)
				next := snapshot.FlushOptions{TempDir: tmp, KeepPrevious: true, IfMatch: base.ETag, LastHash: base.SnapshotHash}
				if err == nil {
					next.IfMatch, next.LastHash = res.ETag, res.SnapshotHash
				} else {
					next.Unconfirmed = []string{res.SnapshotHash}
				}
				if _, err := snapshot.Flush(ctx, src, fb, "k", next); err != nil {
					t.Fatalf("flush after the faults stopped: %v", err)
				}
				if got, err := restored(t, inner, "k"); err != nil || got != want {
					t.Fatalf("after the recovery flush the bucket does not hold every write: %v", err)
				}
				assertEmptyDir(t, tmp)
			})
		}
	}
}

// TestRestoreFaults fails the download of a restore with each fault: the
// restore reports an error (or succeeds honestly), leaves its destination
// as it was and no temp file behind, and works once the faults stop.
func TestRestoreFaults(t *testing.T) {
	src := newDB(t, "WAL")
	fill(t, src, 300)
	inner := bucket.NewMemory()
	res, err := snapshot.Flush(ctx, src, inner, "k", snapshot.FlushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := content(t, src)
	// The same snapshot without its sha256, as the Python original writes
	// it: the checks that remain must catch the faults too.
	data, _ := download(t, inner, "k")
	upload(t, inner, "nosha", data, nil)

	for _, key := range []string{"k", "nosha"} {
		for _, fault := range flushFaults(res.Size) {
			for _, into := range []string{"conn", "file"} {
				t.Run(fmt.Sprintf("%s/%s/%s", key, fault, into), func(t *testing.T) {
					fb := faulty.New(inner)
					rule := fb.Inject(faulty.Download, 1, fault)
					tmp := t.TempDir()
					rctx, cancel := context.WithTimeout(ctx, hangBound)
					defer cancel()
					var (
						err   error
						check func() string
					)
					if into == "conn" {
						dst := newDB(t, "WAL")
						fill(t, dst, 3)
						_, err = snapshot.RestoreConn(rctx, dst, fb, key, snapshot.RestoreOptions{TempDir: tmp})
						check = func() string { return content(t, dst) }
					} else {
						target := filepath.Join(tmp, "work.db")
						os.WriteFile(target, []byte("keep me"), 0o600)
						_, err = snapshot.RestoreFile(rctx, fb, key, target, snapshot.RestoreOptions{})
						check = func() string {
							b, _ := os.ReadFile(target)
							if string(b) == "keep me" {
								return "kept"
							}
							return content(t, openDB(t, target, "DELETE"))
						}
					}
					if rule.Fired() != 1 {
						t.Fatalf("fault fired %d times", rule.Fired())
					}
					honest := fault.String() == faulty.Delay(time.Millisecond).String()
					t.Logf("restore: %v", err)
					switch {
					case honest && err != nil:
						t.Fatalf("restore through %s = %v; want success", fault, err)
					case honest:
						if got := check(); got != want {
							t.Fatal("restored database differs")
						}
						return
					case err == nil:
						t.Fatalf("restore through %s returned nil", fault)
					}
					if into == "conn" {
						if got := check(); got != content(t, newFilled(t, 3)) {
							t.Fatal("a failed restore changed its destination")
						}
						assertEmptyDir(t, tmp)
					} else {
						if got := check(); got != "kept" {
							t.Fatal("a failed RestoreFile changed its target")
						}
						ents, _ := os.ReadDir(tmp)
						if len(ents) != 1 {
							t.Fatalf("RestoreFile left %d files beside its target", len(ents)-1)
						}
					}
					// The faults stop.
					fb.Clear()
					dst := newDB(t, "DELETE")
					if ok, err := snapshot.Restore(ctx, dst, fb, key); !ok || err != nil || content(t, dst) != want {
						t.Fatalf("restore after the faults stopped: %v %v", ok, err)
					}
				})
			}
		}
	}
}

func newFilled(t testing.TB, n int) *sqlite3.SQLiteConn {
	c := newDB(t, "DELETE")
	fill(t, c, n)
	return c
}

// An upload whose call failed may have landed: the next flush must not
// mistake it for another writer's (ErrConflict forever), nor mistake
// another writer's for it.
func TestOwnUploadIsNotAConflict(t *testing.T) {
	setup := func(t *testing.T) (*faulty.Bucket, *sqlite3.SQLiteConn, snapshot.Result, snapshot.Result) {
		fb := faulty.New(bucket.NewMemory())
		src := newDB(t, "WAL")
		fill(t, src, 50)
		base, err := snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fill(t, src, 50)
		fb.Inject(faulty.Upload, 1, faulty.FailAfter(nil))
		lost, err := snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true})
		if !errors.Is(err, faulty.ErrInjected) {
			t.Fatalf("setup: %v", err)
		}
		return fb, src, base, lost
	}
	t.Run("same snapshot again", func(t *testing.T) {
		fb, src, base, lost := setup(t)
		// No Unconfirmed needed: the object is this very snapshot.
		res, err := snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true})
		st, _ := fb.Inner().Stat(ctx, "k")
		if err != nil || res.Uploaded || res.ETag != st.ETag || res.SnapshotHash != lost.SnapshotHash {
			t.Fatalf("flush = %+v, %v; want the object already there (ETag %s)", res, err, st.ETag)
		}
	})
	t.Run("newer snapshot", func(t *testing.T) {
		fb, src, base, lost := setup(t)
		fill(t, src, 1)
		opts := snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true}
		if _, err := snapshot.Flush(ctx, src, fb, "k", opts); !errors.Is(err, snapshot.ErrConflict) {
			t.Fatalf("without Unconfirmed: %v; want ErrConflict (the object is not this snapshot)", err)
		}
		opts.Unconfirmed = []string{lost.SnapshotHash}
		res, err := snapshot.Flush(ctx, src, fb, "k", opts)
		if err != nil || !res.Uploaded || !res.KeptPrevious {
			t.Fatalf("with Unconfirmed: %+v, %v", res, err)
		}
		if got, err := restored(t, fb, "k"); err != nil || got != content(t, src) {
			t.Fatalf("bucket: %v", err)
		}
		if got, err := restored(t, fb, "k.prev"); err != nil || strings.Count(got, ",") != 99 {
			t.Fatalf("KEY.prev should hold the landed upload (100 rows): %v", err)
		}
	})
	t.Run("another writer's is still a conflict", func(t *testing.T) {
		fb, src, _, lost := setup(t)
		other := newDB(t, "WAL")
		info, err := snapshot.RestoreConn(ctx, other, fb, "k", snapshot.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fill(t, other, 7)
		won, err := snapshot.Flush(ctx, other, fb, "k", snapshot.FlushOptions{IfMatch: info.ETag})
		if err != nil {
			t.Fatal(err)
		}
		fill(t, src, 1)
		_, err = snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{IfMatch: info.ETag, Unconfirmed: []string{lost.SnapshotHash}, KeepPrevious: true})
		if !errors.Is(err, snapshot.ErrConflict) {
			t.Fatalf("flush over another writer's snapshot: %v; want ErrConflict", err)
		}
		if st, _ := fb.Inner().Stat(ctx, "k"); st.ETag != won.ETag {
			t.Fatal("the other writer's snapshot was replaced")
		}
	})
	// A Stat that answers without an ETag (a lying gateway, faulty.Lie)
	// has not answered: no store has an object without one. Taking its
	// empty metadata for another writer's snapshot would stop a writer
	// whose own upload landed.
	t.Run("stat lies while telling", func(t *testing.T) {
		fb, src, base, lost := setup(t)
		fill(t, src, 1)
		r := fb.Inject(faulty.Stat, 1, faulty.Lie())
		opts := snapshot.FlushOptions{IfMatch: base.ETag, Unconfirmed: []string{lost.SnapshotHash}}
		_, err := snapshot.Flush(ctx, src, fb, "k", opts)
		if err == nil || errors.Is(err, snapshot.ErrConflict) || r.Fired() != 1 {
			t.Fatalf("flush = %v; want an error that is not a conflict", err)
		}
		if res, err := snapshot.Flush(ctx, src, fb, "k", opts); err != nil || !res.Uploaded {
			t.Fatalf("the next flush = %+v, %v; want our landed upload replaced", res, err)
		}
	})
	t.Run("stat fails while telling", func(t *testing.T) {
		fb, src, base, lost := setup(t)
		fill(t, src, 1)
		r := fb.Inject(faulty.Stat, 1, faulty.Fail(nil))
		_, err := snapshot.Flush(ctx, src, fb, "k", snapshot.FlushOptions{IfMatch: base.ETag, Unconfirmed: []string{lost.SnapshotHash}})
		if err == nil || errors.Is(err, snapshot.ErrConflict) || r.Fired() != 1 {
			t.Fatalf("flush = %v; want an error that is not (yet) a conflict", err)
		}
	})
}
