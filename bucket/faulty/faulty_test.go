package faulty_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/buckettest"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
)

var ctx = context.Background()

// Without rules, a faulty bucket is its inner bucket: it passes the whole
// conformance suite.
func TestConformanceWithoutRules(t *testing.T) {
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket { return faulty.New(bucket.NewMemory()) },
	})
}

// Rules that never fire (every 10⁶th call) change nothing either.
func TestConformanceWithIdleRules(t *testing.T) {
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket {
			b := faulty.New(bucket.NewMemory())
			b.Inject(faulty.Any, 1_000_000, faulty.Fail(nil))
			return b
		},
	})
}

func put(t *testing.T, b bucket.Bucket, key, s string) bucket.Attrs {
	t.Helper()
	a, err := b.Upload(ctx, key, strings.NewReader(s), int64(len(s)), bucket.WriteOptions{Metadata: map[string]string{"m": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func get(t *testing.T, b bucket.Bucket, key string) string {
	t.Helper()
	var w buf
	if _, err := b.Download(ctx, key, &w); err != nil {
		t.Fatal(err)
	}
	return string(w.p)
}

type buf struct {
	mu sync.Mutex
	p  []byte
}

func (w *buf) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.p) {
		w.p = append(w.p, make([]byte, end-len(w.p))...)
	}
	copy(w.p[off:], p)
	return len(p), nil
}

// wantInjected checks that err is a *bucket.Error for op and key matching
// ErrInjected.
func wantInjected(t *testing.T, err error, op faulty.Op, key string) {
	t.Helper()
	var be *bucket.Error
	if !errors.Is(err, faulty.ErrInjected) || !errors.As(err, &be) || be.Op != string(op) || be.Key != key {
		t.Fatalf("error %v; want an injected *bucket.Error for %s %q", err, op, key)
	}
}

// Each operation under each fault: what it returns and what it leaves in
// the inner bucket.
func TestFaultsPerOperation(t *testing.T) {
	const old, data = "old content", "0123456789"
	type call func(b *faulty.Bucket) (got string, err error)
	upload := func(b *faulty.Bucket) (string, error) {
		a, err := b.Upload(ctx, "k", strings.NewReader(data), int64(len(data)), bucket.WriteOptions{})
		return fmt.Sprint(a.Size), err
	}
	download := func(b *faulty.Bucket) (string, error) {
		var w buf
		_, err := b.Download(ctx, "k", &w)
		return string(w.p), err
	}
	stat := func(b *faulty.Bucket) (string, error) {
		a, err := b.Stat(ctx, "k")
		return fmt.Sprint(a.Size), err
	}
	cp := func(b *faulty.Bucket) (string, error) {
		a, err := b.Copy(ctx, "k", "k2", bucket.CopyOptions{})
		return a.Key, err
	}
	del := func(b *faulty.Bucket) (string, error) { return "", b.Delete(ctx, "k") }
	list := func(b *faulty.Bucket) (string, error) {
		p, err := b.List(ctx, bucket.ListOptions{Prefix: "k"})
		return fmt.Sprint(len(p.Objects)), err
	}
	tests := []struct {
		op    faulty.Op
		fault faulty.Fault
		do    call
		// wantErr: an injected error; want: the call's result when it
		// succeeds; stored: what "k" holds afterwards ("" for nothing);
		// k2: whether k2 exists afterwards.
		wantErr bool
		want    string
		stored  string
		k2      bool
	}{
		{faulty.Upload, faulty.Fail(nil), upload, true, "", old, false},
		{faulty.Upload, faulty.FailAfter(nil), upload, true, "", data, false},
		{faulty.Upload, faulty.Truncate(4), upload, true, "", data[:4], false},
		{faulty.Upload, faulty.Truncate(-3), upload, true, "", data[:7], false},
		{faulty.Upload, faulty.TruncateSilently(4), upload, false, "10", data[:4], false},
		{faulty.Upload, faulty.Lie(), upload, false, "10", old, false},
		{faulty.Upload, faulty.Delay(time.Millisecond), upload, false, "10", data, false},
		{faulty.Download, faulty.Fail(nil), download, true, "", old, false},
		{faulty.Download, faulty.FailAfter(nil), download, true, "", old, false},
		{faulty.Download, faulty.Truncate(3), download, true, "", old, false},
		{faulty.Download, faulty.TruncateSilently(3), download, false, old[:3], old, false},
		{faulty.Download, faulty.TruncateSilently(-1), download, false, old[:len(old)-1], old, false},
		{faulty.Download, faulty.Lie(), download, false, "", old, false},
		{faulty.Stat, faulty.Fail(nil), stat, true, "", old, false},
		{faulty.Stat, faulty.FailAfter(nil), stat, true, "", old, false},
		{faulty.Stat, faulty.Lie(), stat, false, "0", old, false},
		{faulty.Stat, faulty.Truncate(1), stat, true, "", old, false},
		{faulty.Copy, faulty.Fail(nil), cp, true, "", old, false},
		{faulty.Copy, faulty.FailAfter(nil), cp, true, "", old, true},
		{faulty.Copy, faulty.Lie(), cp, false, "k2", old, false},
		{faulty.Copy, faulty.TruncateSilently(1), cp, false, "k2", old, false},
		{faulty.Delete, faulty.Fail(nil), del, true, "", old, false},
		{faulty.Delete, faulty.FailAfter(nil), del, true, "", "", false},
		{faulty.Delete, faulty.Lie(), del, false, "", old, false},
		{faulty.List, faulty.Fail(nil), list, true, "", old, false},
		{faulty.List, faulty.FailAfter(nil), list, true, "", old, false},
		{faulty.List, faulty.Lie(), list, false, "0", old, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.op)+"/"+tt.fault.String(), func(t *testing.T) {
			inner := bucket.NewMemory()
			put(t, inner, "k", old)
			b := faulty.New(inner)
			r := b.Inject(tt.op, 1, tt.fault)
			got, err := tt.do(b)
			if tt.wantErr {
				wantInjected(t, err, tt.op, "k")
			} else if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q, nil", got, err, tt.want)
			}
			if r.Fired() != 1 || b.Calls(tt.op) != 1 {
				t.Fatalf("fired %d, calls %d; want 1, 1", r.Fired(), b.Calls(tt.op))
			}
			stored := ""
			if _, err := inner.Stat(ctx, "k"); err == nil {
				stored = get(t, inner, "k")
			}
			if stored != tt.stored {
				t.Fatalf("inner bucket holds %q; want %q", stored, tt.stored)
			}
			if _, err := inner.Stat(ctx, "k2"); (err == nil) != tt.k2 {
				t.Fatalf("k2 exists: %v; want %v", err == nil, tt.k2)
			}
			// The rule is spent: the next call goes through.
			if _, err := tt.do(b); err != nil {
				t.Fatalf("second call: %v", err)
			}
		})
	}
}

// A lying upload's ETag belongs to no object and fails as a condition.
func TestLieETag(t *testing.T) {
	inner := bucket.NewMemory()
	b := faulty.New(inner)
	b.Inject(faulty.Upload, 1, faulty.Lie())
	a, err := b.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{Metadata: map[string]string{"sha256": "abc"}})
	if err != nil || a.ETag == "" || a.Metadata["sha256"] != "abc" {
		t.Fatalf("lie = %+v, %v", a, err)
	}
	put(t, inner, "k", "real")
	_, err = b.Upload(ctx, "k", strings.NewReader("y"), 1, bucket.WriteOptions{IfMatch: a.ETag})
	if !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("IfMatch on a lie's ETag: %v; want ErrPrecondition", err)
	}
}

// Lies about missing objects tell the truth: there is nothing to pretend.
func TestLieAboutMissing(t *testing.T) {
	b := faulty.New(bucket.NewMemory())
	b.Inject(faulty.Any, faulty.Every, faulty.Lie())
	var w buf
	if _, err := b.Download(ctx, "nope", &w); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("download: %v", err)
	}
	_, err := b.Copy(ctx, "nope", "x", bucket.CopyOptions{})
	var be *bucket.Error
	if !errors.Is(err, bucket.ErrNotFound) || !errors.As(err, &be) || be.Op != "copy" {
		t.Fatalf("copy: %v", err)
	}
}

func TestFailWithGivenError(t *testing.T) {
	b := faulty.New(bucket.NewMemory())
	b.Inject(faulty.Upload, faulty.Every, faulty.Fail(bucket.ErrPrecondition))
	b.Inject(faulty.Stat, faulty.Every, faulty.Fail(&bucket.Error{Op: "stat", Key: "other", Err: bucket.ErrNotFound}))
	_, err := b.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{})
	var be *bucket.Error
	if !errors.Is(err, bucket.ErrPrecondition) || errors.Is(err, faulty.ErrInjected) || !errors.As(err, &be) || be.Key != "k" {
		t.Fatalf("upload: %v", err)
	}
	_, err = b.Stat(ctx, "k")
	if !errors.As(err, &be) || be.Key != "other" {
		t.Fatalf("a *bucket.Error is returned as is: %v", err)
	}
}

func TestHangAndDelayHonourContext(t *testing.T) {
	inner := bucket.NewMemory()
	b := faulty.New(inner)
	b.Inject(faulty.Upload, 1, faulty.Hang())
	b.Inject(faulty.Upload, 1, faulty.Delay(time.Hour)) // counts the same call; shadowed by Hang
	b.Inject(faulty.Upload, 2, faulty.Delay(time.Hour))
	for i := range 2 {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := b.Upload(c, "k", strings.NewReader("x"), 1, bucket.WriteOptions{})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: %v; want a deadline error", i+1, err)
		}
	}
	if _, err := inner.Stat(ctx, "k"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("a hung or cut-short delayed upload stored something: %v", err)
	}
	if _, err := b.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{}); err != nil {
		t.Fatalf("third upload: %v", err)
	}
}

func TestNthCallEveryRemoveClear(t *testing.T) {
	b := faulty.New(bucket.NewMemory())
	put(t, b, "k", "v")                                 // before the rule: not counted by it
	third := b.Inject(faulty.Stat, 3, faulty.Fail(nil)) // third Stat from now
	var errs []bool
	for range 5 {
		_, err := b.Stat(ctx, "k")
		errs = append(errs, err != nil)
	}
	if fmt.Sprint(errs) != "[false false true false false]" || third.Fired() != 1 {
		t.Fatalf("failures %v, fired %d", errs, third.Fired())
	}
	every := b.Inject(faulty.Any, faulty.Every, faulty.Fail(nil))
	if _, err := b.Stat(ctx, "k"); err == nil {
		t.Fatal("Every rule did not fire")
	}
	if err := b.Delete(ctx, "k"); err == nil {
		t.Fatal("Any rule did not fire on delete")
	}
	every.Remove()
	if _, err := b.Stat(ctx, "k"); err != nil {
		t.Fatalf("after Remove: %v", err)
	}
	b.Inject(faulty.Stat, faulty.Every, faulty.Fail(nil))
	b.Clear()
	if _, err := b.Stat(ctx, "k"); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
	if every.Fired() != 2 || b.Calls(faulty.Stat) != 8 || b.Calls(faulty.Upload) != 1 || b.Calls(faulty.Any) != 10 {
		t.Fatalf("fired %d, stats %d, uploads %d, all %d", every.Fired(), b.Calls(faulty.Stat), b.Calls(faulty.Upload), b.Calls(faulty.Any))
	}
}

func TestInjectFunc(t *testing.T) {
	b := faulty.New(bucket.NewMemory())
	var keys []string
	r := b.InjectFunc(faulty.Upload, func(call int, key string) (faulty.Fault, bool) {
		keys = append(keys, key)
		return faulty.Fail(nil), call%2 == 0
	})
	var failed []bool
	for i := range 4 {
		_, err := b.Upload(ctx, fmt.Sprint("k", i), strings.NewReader("x"), 1, bucket.WriteOptions{})
		failed = append(failed, err != nil)
	}
	if fmt.Sprint(failed) != "[false true false true]" || r.Fired() != 2 || fmt.Sprint(keys) != "[k0 k1 k2 k3]" {
		t.Fatalf("failed %v, fired %d, keys %v", failed, r.Fired(), keys)
	}
}

// Many goroutines through random faults: counts add up, the race detector
// stays quiet, and every object is either absent or whole, except where a
// truncation stored a prefix on purpose.
func TestConcurrentUse(t *testing.T) {
	inner := bucket.NewMemory()
	b := faulty.New(inner)
	rng := rand.New(rand.NewPCG(7, 7))
	faults := []faulty.Fault{faulty.Fail(nil), faulty.FailAfter(nil), faulty.Delay(time.Microsecond), faulty.Lie()}
	r := b.InjectFunc(faulty.Any, func(int, string) (faulty.Fault, bool) {
		return faults[rng.IntN(len(faults))], rng.IntN(3) == 0
	})
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d/%d", w, i%5)
				content := bytes.Repeat([]byte{byte(i)}, 100)
				switch i % 4 {
				case 0:
					b.Upload(ctx, key, bytes.NewReader(content), 100, bucket.WriteOptions{})
				case 1:
					var w buf
					if _, err := b.Download(ctx, key, &w); err == nil && len(w.p) != 0 && len(w.p) != 100 {
						t.Errorf("download of %s: %d bytes", key, len(w.p))
					}
				case 2:
					b.Stat(ctx, key)
				case 3:
					b.List(ctx, bucket.ListOptions{Prefix: fmt.Sprintf("w%d/", w)})
				}
			}
		})
	}
	wg.Wait()
	if got := b.Calls(faulty.Any); got != workers*each {
		t.Fatalf("Calls(Any) = %d, want %d", got, workers*each)
	}
	if r.Fired() == 0 || r.Fired() == workers*each {
		t.Fatalf("random rule fired %d of %d times", r.Fired(), workers*each)
	}
}

// IgnoreConditions turns conditional writes into plain ones, as s3rver
// does: the second writer overwrites the first.
func TestIgnoreConditions(t *testing.T) {
	b := faulty.New(bucket.NewMemory())
	first := put(t, b, "k", "first")
	put(t, b, "src", "source")
	r := b.Inject(faulty.Any, faulty.Every, faulty.IgnoreConditions())
	for _, opts := range []bucket.WriteOptions{{IfNoneMatch: true}, {IfMatch: `"wrong"`}} {
		if _, err := b.Upload(ctx, "k", strings.NewReader("second"), 6, opts); err != nil {
			t.Fatalf("Upload(%+v) through IgnoreConditions = %v; want success", opts, err)
		}
	}
	if _, err := b.Copy(ctx, "src", "k", bucket.CopyOptions{IfSourceMatch: first.ETag, IfNoneMatch: true}); err != nil {
		t.Fatalf("Copy through IgnoreConditions = %v; want success", err)
	}
	if got := get(t, b, "k"); got != "source" {
		t.Fatalf("k holds %q; want the copy's %q", got, "source")
	}
	if r.Fired() < 3 {
		t.Fatalf("the rule fired %d times; want at least 3", r.Fired())
	}
	b.Clear()
	if _, err := b.Copy(ctx, "src", "k", bucket.CopyOptions{IfNoneMatch: true}); !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("Copy after Clear = %v; want ErrPrecondition", err)
	}
}
