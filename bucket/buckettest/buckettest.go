package buckettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Harness tells the suite how to make a fresh, empty bucket of the backend
// under test and what the backend's transfer thresholds are.
type Harness struct {
	// New returns a new, empty bucket, private to the calling test. It
	// registers any cleanup with t.Cleanup.
	New func(t *testing.T) bucket.Bucket
	// PartSize is the size of one part of a multipart upload, for backends
	// that split large uploads (S3); the suite uploads an object of at
	// least three parts. Zero means the backend has no parts, and the suite
	// uses 3 MiB + 1 byte for that test.
	PartSize int64
	// CopyIgnoresDestConditions says that the backend is known to ignore
	// CopyOptions.IfMatch and IfNoneMatch (an S3 service such as
	// versitygw v1.8.0): the suite then checks only that copies whose
	// destination conditions hold succeed.
	CopyIgnoresDestConditions bool
}

// Run runs the whole conformance suite against h as subtests of t, one
// per behaviour of the bucket.Bucket contract, each on a fresh bucket from
// h.New: not-found errors, round trips with metadata, ETags, conditional
// uploads (small and multipart-sized), large downloads, Copy, Delete, List
// and its paging, cancellation, invalid keys, and racing IfNoneMatch
// uploads. A subtest's name says which behaviour failed.
func Run(t *testing.T, h Harness) {
	t.Helper()
	s := &suite{h: h}
	for _, tc := range []struct {
		name string
		test func(*testing.T, bucket.Bucket)
	}{
		{"NotFound", s.testNotFound},
		{"RoundTrip", s.testRoundTrip},
		{"EmptyObject", s.testEmptyObject},
		{"ETag", s.testETag},
		{"ConditionalUpload", s.testConditionalUpload},
		{"ConditionalLargeUpload", s.testConditionalLargeUpload},
		{"LargeDownload", s.testLargeDownload},
		{"Copy", s.testCopy},
		{"CopyDestConditions", s.testCopyDestConditions},
		{"Delete", s.testDelete},
		{"List", s.testList},
		{"ListPaging", s.testListPaging},
		{"CancelMidUpload", s.testCancelMidUpload},
		{"CancelledContext", s.testCancelledContext},
		{"InvalidKeys", s.testInvalidKeys},
		{"ConcurrentIfNoneMatch", s.testConcurrentIfNoneMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.New(t)
			if b == nil {
				t.Fatal("Harness.New returned nil")
			}
			tc.test(t, b)
		})
	}
}

type suite struct {
	h Harness
}

// largeSize returns the size of the suite's large objects: at least three
// parts.
func (s *suite) largeSize() int64 {
	if s.h.PartSize > 0 {
		return 3*s.h.PartSize + 1
	}
	return 3<<20 + 1
}

// data returns n pseudo-random bytes, a different sequence for each seed,
// so that a misplaced range shows as a mismatch.
func data(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := make([]byte, n)
	for i := 0; i+8 <= len(p); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(p) &^ 7; i < len(p); i++ {
		p[i] = byte(r.Uint32())
	}
	return p
}

func upload(t *testing.T, b bucket.Bucket, key string, p []byte, opts bucket.WriteOptions) bucket.Attrs {
	t.Helper()
	a, err := b.Upload(context.Background(), key, bytes.NewReader(p), int64(len(p)), opts)
	if err != nil {
		t.Fatalf("Upload(%q, %d bytes): %v", key, len(p), err)
	}
	if a.Key != key || a.Size != int64(len(p)) || a.ETag == "" {
		t.Fatalf("Upload(%q) returned %+v; want key %q, size %d and an ETag", key, a, key, len(p))
	}
	return a
}

func download(t *testing.T, b bucket.Bucket, key string) ([]byte, bucket.Attrs) {
	t.Helper()
	var w writerAt
	a, err := b.Download(context.Background(), key, &w)
	if err != nil {
		t.Fatalf("Download(%q): %v", key, err)
	}
	p := w.bytes()
	if int64(len(p)) != a.Size {
		t.Fatalf("Download(%q) wrote %d bytes, returned size %d", key, len(p), a.Size)
	}
	return p, a
}

func stat(t *testing.T, b bucket.Bucket, key string) bucket.Attrs {
	t.Helper()
	a, err := b.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if a.Key != key {
		t.Fatalf("Stat(%q) returned key %q", key, a.Key)
	}
	return a
}

// wantObject checks that key holds exactly p with ETag etag.
func wantObject(t *testing.T, b bucket.Bucket, key string, p []byte, etag string) {
	t.Helper()
	if a := stat(t, b, key); a.ETag != etag || a.Size != int64(len(p)) {
		t.Fatalf("Stat(%q) = ETag %s, size %d; want ETag %s, size %d", key, a.ETag, a.Size, etag, len(p))
	}
	got, a := download(t, b, key)
	if !bytes.Equal(got, p) {
		t.Fatalf("Download(%q): content differs (%d bytes, want %d)", key, len(got), len(p))
	}
	if a.ETag != etag {
		t.Fatalf("Download(%q) returned ETag %s; want %s", key, a.ETag, etag)
	}
}

func wantNotFound(t *testing.T, b bucket.Bucket, key string) {
	t.Helper()
	_, err := b.Stat(context.Background(), key)
	if !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("Stat(%q) = %v; want ErrNotFound", key, err)
	}
}

// wantErr checks that err matches target and is a *bucket.Error for op and
// key.
func wantErr(t *testing.T, err, target error, op, key string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s %q: error %v; want one matching %v", op, key, err, target)
	}
	var be *bucket.Error
	if !errors.As(err, &be) {
		t.Fatalf("%s %q: error %v (%T) is not a *bucket.Error", op, key, err, err)
	}
	if be.Op != op || be.Key != key {
		t.Fatalf("%s %q: *bucket.Error has Op %q, Key %q", op, key, be.Op, be.Key)
	}
}

func (s *suite) testNotFound(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	_, err := b.Stat(ctx, "missing")
	wantErr(t, err, bucket.ErrNotFound, "stat", "missing")
	var w writerAt
	_, err = b.Download(ctx, "dir/missing", &w)
	wantErr(t, err, bucket.ErrNotFound, "download", "dir/missing")
	if len(w.bytes()) != 0 {
		t.Errorf("Download of a missing object wrote %d bytes", len(w.bytes()))
	}
	// A key that is a prefix of an existing key is not an object.
	upload(t, b, "dir/obj", []byte("x"), bucket.WriteOptions{})
	_, err = b.Stat(ctx, "dir")
	wantErr(t, err, bucket.ErrNotFound, "stat", "dir")
}

func (s *suite) testRoundTrip(t *testing.T, b bucket.Bucket) {
	p := data(1, 1000)
	md := map[string]string{"snapshot-version": "3", "page_size": "4096", "note": "Hello, World!"}
	up := upload(t, b, "db/main.sqlite", p, bucket.WriteOptions{Metadata: md})

	st := stat(t, b, "db/main.sqlite")
	if st.Size != int64(len(p)) || st.ETag != up.ETag {
		t.Errorf("Stat = size %d, ETag %s; want %d, %s", st.Size, st.ETag, len(p), up.ETag)
	}
	if !maps.Equal(st.Metadata, md) {
		t.Errorf("Stat metadata = %v; want %v", st.Metadata, md)
	}
	if st.ModTime.IsZero() {
		t.Error("Stat returned a zero ModTime")
	}
	got, da := download(t, b, "db/main.sqlite")
	if !bytes.Equal(got, p) {
		t.Error("Download: content differs from what was uploaded")
	}
	if da.ETag != up.ETag || !maps.Equal(da.Metadata, md) {
		t.Errorf("Download attrs = ETag %s, metadata %v; want %s, %v", da.ETag, da.Metadata, up.ETag, md)
	}

	// Keys are opaque apart from the rules of ValidateKey.
	for _, key := range []string{"with space", "ünïcödé/ключ", "a.b-c_d~e!f'(g)*h", ".hidden", "x/y/z/deep", "100%"} {
		p := []byte("content of " + key)
		a := upload(t, b, key, p, bucket.WriteOptions{})
		wantObject(t, b, key, p, a.ETag)
	}
}

func (s *suite) testEmptyObject(t *testing.T, b bucket.Bucket) {
	a := upload(t, b, "empty", nil, bucket.WriteOptions{})
	wantObject(t, b, "empty", nil, a.ETag)
	if md := stat(t, b, "empty").Metadata; len(md) != 0 {
		t.Errorf("metadata of an object uploaded without any: %v", md)
	}
}

func (s *suite) testETag(t *testing.T, b bucket.Bucket) {
	a1 := upload(t, b, "obj", []byte("version 1"), bucket.WriteOptions{Metadata: map[string]string{"v": "1"}})
	for range 2 {
		if e := stat(t, b, "obj").ETag; e != a1.ETag {
			t.Fatalf("Stat ETag = %s; want the ETag Upload returned, %s", e, a1.ETag)
		}
	}
	a2 := upload(t, b, "obj", []byte("version 2, longer"), bucket.WriteOptions{Metadata: map[string]string{"v": "1"}})
	if a2.ETag == a1.ETag {
		t.Fatalf("overwriting with new content kept ETag %s", a1.ETag)
	}
	if e := stat(t, b, "obj").ETag; e != a2.ETag {
		t.Fatalf("Stat ETag after overwrite = %s; want %s", e, a2.ETag)
	}
	// Same length, different bytes.
	a3 := upload(t, b, "obj", []byte("version 3, longer"), bucket.WriteOptions{Metadata: map[string]string{"v": "1"}})
	if a3.ETag == a2.ETag {
		t.Fatalf("overwriting with same-length new content kept ETag %s", a2.ETag)
	}
}

func (s *suite) testConditionalUpload(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	put := func(key string, p []byte, opts bucket.WriteOptions) (bucket.Attrs, error) {
		return b.Upload(ctx, key, bytes.NewReader(p), int64(len(p)), opts)
	}
	v1, v2, v3 := []byte("one"), []byte("two, different"), []byte("three")

	a1, err := put("c", v1, bucket.WriteOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("IfNoneMatch upload of an absent key: %v", err)
	}
	_, err = put("c", v2, bucket.WriteOptions{IfNoneMatch: true})
	wantErr(t, err, bucket.ErrPrecondition, "upload", "c")
	wantObject(t, b, "c", v1, a1.ETag)

	a2, err := put("c", v2, bucket.WriteOptions{IfMatch: a1.ETag})
	if err != nil {
		t.Fatalf("upload with the current ETag as IfMatch: %v", err)
	}
	wantObject(t, b, "c", v2, a2.ETag)

	_, err = put("c", v3, bucket.WriteOptions{IfMatch: a1.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "upload", "c")
	wantObject(t, b, "c", v2, a2.ETag)

	_, err = put("absent", v3, bucket.WriteOptions{IfMatch: a2.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "upload", "absent")
	wantNotFound(t, b, "absent")

	// After a delete the key is absent again.
	if err := b.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	_, err = put("c", v3, bucket.WriteOptions{IfMatch: a2.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "upload", "c")
	if _, err := put("c", v3, bucket.WriteOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("IfNoneMatch upload after delete: %v", err)
	}
}

func (s *suite) testConditionalLargeUpload(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	n := s.largeSize()
	old := upload(t, b, "big", []byte("small first version"), bucket.WriteOptions{})
	v1 := data(2, n)
	a1 := upload(t, b, "big", v1, bucket.WriteOptions{IfMatch: old.ETag})

	v2 := data(3, n)
	_, err := b.Upload(ctx, "big", bytes.NewReader(v2), n, bucket.WriteOptions{IfMatch: old.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "upload", "big")
	wantObject(t, b, "big", v1, a1.ETag)

	_, err = b.Upload(ctx, "big", bytes.NewReader(v2), n, bucket.WriteOptions{IfNoneMatch: true})
	wantErr(t, err, bucket.ErrPrecondition, "upload", "big")
	wantObject(t, b, "big", v1, a1.ETag)

	a2 := upload(t, b, "big", v2, bucket.WriteOptions{IfMatch: a1.ETag, Metadata: map[string]string{"gen": "2"}})
	if a2.ETag == a1.ETag {
		t.Fatalf("large overwrite kept ETag %s", a1.ETag)
	}
	wantObject(t, b, "big", v2, a2.ETag)
	if md := stat(t, b, "big").Metadata; md["gen"] != "2" {
		t.Errorf("metadata after large conditional upload = %v", md)
	}
}

func (s *suite) testLargeDownload(t *testing.T, b bucket.Bucket) {
	p := data(4, s.largeSize())
	a := upload(t, b, "large", p, bucket.WriteOptions{})
	var w writerAt
	da, err := b.Download(context.Background(), "large", &w)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.bytes(); !bytes.Equal(got, p) {
		t.Fatalf("Download: %d bytes differing from the %d uploaded", len(got), len(p))
	}
	if da.ETag != a.ETag || da.Size != int64(len(p)) {
		t.Errorf("Download attrs = %+v; want ETag %s, size %d", da, a.ETag, len(p))
	}
}

func (s *suite) testCopy(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	md := map[string]string{"kind": "snapshot"}
	p := data(5, 5000)
	src := upload(t, b, "src", p, bucket.WriteOptions{Metadata: md})

	a, err := b.Copy(ctx, "src", "dir/dst", bucket.CopyOptions{})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if a.Key != "dir/dst" || a.Size != int64(len(p)) || a.ETag == "" {
		t.Errorf("Copy returned %+v; want key dir/dst, size %d and an ETag", a, len(p))
	}
	wantObject(t, b, "dir/dst", p, a.ETag)
	if got := stat(t, b, "dir/dst").Metadata; !maps.Equal(got, md) {
		t.Errorf("copy's metadata = %v; want %v", got, md)
	}
	wantObject(t, b, "src", p, src.ETag)

	// Overwriting an existing destination, with the current source ETag.
	a, err = b.Copy(ctx, "src", "dir/dst", bucket.CopyOptions{IfSourceMatch: src.ETag})
	if err != nil {
		t.Fatalf("Copy with current IfSourceMatch: %v", err)
	}
	wantObject(t, b, "dir/dst", p, a.ETag)

	_, err = b.Copy(ctx, "missing", "dir/other", bucket.CopyOptions{})
	wantErr(t, err, bucket.ErrNotFound, "copy", "missing")
	wantNotFound(t, b, "dir/other")

	// A stale source ETag fails and leaves the destination alone.
	src2 := upload(t, b, "src", []byte("new source"), bucket.WriteOptions{Metadata: md})
	dst := upload(t, b, "dst2", []byte("destination"), bucket.WriteOptions{})
	_, err = b.Copy(ctx, "src", "dst2", bucket.CopyOptions{IfSourceMatch: src.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "copy", "src")
	wantObject(t, b, "dst2", []byte("destination"), dst.ETag)
	_, err = b.Copy(ctx, "src", "absent", bucket.CopyOptions{IfSourceMatch: src.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "copy", "src")
	wantNotFound(t, b, "absent")

	a, err = b.Copy(ctx, "src", "dst2", bucket.CopyOptions{IfSourceMatch: src2.ETag})
	if err != nil {
		t.Fatalf("Copy with current IfSourceMatch: %v", err)
	}
	wantObject(t, b, "dst2", []byte("new source"), a.ETag)
}

// testCopyDestConditions checks CopyOptions.IfMatch and IfNoneMatch: a
// copy replaces only the destination it was told about.
func (s *suite) testCopyDestConditions(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	p := data(6, 3000)
	src := upload(t, b, "src", p, bucket.WriteOptions{Metadata: map[string]string{"kind": "snapshot"}})

	// IfNoneMatch on a missing destination, and IfMatch on the current one,
	// hold.
	a, err := b.Copy(ctx, "src", "dst", bucket.CopyOptions{IfSourceMatch: src.ETag, IfNoneMatch: true})
	if err != nil {
		t.Fatalf("Copy with IfNoneMatch to a missing destination: %v", err)
	}
	wantObject(t, b, "dst", p, a.ETag)
	a, err = b.Copy(ctx, "src", "dst", bucket.CopyOptions{IfMatch: a.ETag})
	if err != nil {
		t.Fatalf("Copy with IfMatch of the current destination: %v", err)
	}
	wantObject(t, b, "dst", p, a.ETag)
	if s.h.CopyIgnoresDestConditions {
		return
	}

	// Failed destination conditions change nothing.
	other := upload(t, b, "other", []byte("someone else's"), bucket.WriteOptions{})
	_, err = b.Copy(ctx, "src", "other", bucket.CopyOptions{IfNoneMatch: true})
	wantErr(t, err, bucket.ErrPrecondition, "copy", "src")
	wantObject(t, b, "other", []byte("someone else's"), other.ETag)
	_, err = b.Copy(ctx, "src", "other", bucket.CopyOptions{IfSourceMatch: src.ETag, IfMatch: src.ETag})
	wantErr(t, err, bucket.ErrPrecondition, "copy", "src")
	wantObject(t, b, "other", []byte("someone else's"), other.ETag)
	_, err = b.Copy(ctx, "src", "absent", bucket.CopyOptions{IfMatch: other.ETag})
	if !errors.Is(err, bucket.ErrPrecondition) && !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("Copy with IfMatch to a missing destination: %v; want ErrPrecondition (or ErrNotFound)", err)
	}
	wantNotFound(t, b, "absent")
}

func (s *suite) testDelete(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	upload(t, b, "d/1", []byte("one"), bucket.WriteOptions{})
	keep := upload(t, b, "d/2", []byte("two"), bucket.WriteOptions{})
	if err := b.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, b, "d/1")
	var w writerAt
	_, err := b.Download(ctx, "d/1", &w)
	wantErr(t, err, bucket.ErrNotFound, "download", "d/1")
	wantObject(t, b, "d/2", []byte("two"), keep.ETag)

	if err := b.Delete(ctx, "d/1"); err != nil {
		t.Errorf("deleting a deleted object: %v", err)
	}
	if err := b.Delete(ctx, "never/existed"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	// Deleting a key that is only a prefix of others deletes nothing.
	if err := b.Delete(ctx, "d"); err != nil {
		t.Errorf("deleting a key that is a prefix of others: %v", err)
	}
	wantObject(t, b, "d/2", []byte("two"), keep.ETag)

	// The last object under a prefix goes, and its key can be reused.
	if err := b.Delete(ctx, "d/2"); err != nil {
		t.Fatal(err)
	}
	a := upload(t, b, "d", []byte("now an object"), bucket.WriteOptions{IfNoneMatch: true})
	wantObject(t, b, "d", []byte("now an object"), a.ETag)
}

func keysOf(as []bucket.Attrs) []string {
	ks := make([]string, len(as))
	for i, a := range as {
		ks[i] = a.Key
	}
	return ks
}

func (s *suite) testList(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	// Lexical order is byte order: '-' < '.' < '/' < '0', which is not
	// the order of a directory walk.
	keys := []string{"list/a0", "list/a/b", "list/a.c", "list/a-x", "list/b/c/d", "lisx", "other/list/a", "list.txt"}
	etags := map[string]string{}
	for i, k := range keys {
		a := upload(t, b, k, bytes.Repeat([]byte{'x'}, i), bucket.WriteOptions{Metadata: map[string]string{"i": fmt.Sprint(i)}})
		etags[k] = a.ETag
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"list/", []string{"list/a-x", "list/a.c", "list/a/b", "list/a0", "list/b/c/d"}},
		{"list/a", []string{"list/a-x", "list/a.c", "list/a/b", "list/a0"}},
		{"list/a/", []string{"list/a/b"}},
		{"list", []string{"list.txt", "list/a-x", "list/a.c", "list/a/b", "list/a0", "list/b/c/d"}},
		{"", []string{"list.txt", "list/a-x", "list/a.c", "list/a/b", "list/a0", "list/b/c/d", "lisx", "other/list/a"}},
		{"list/b/c/d", []string{"list/b/c/d"}},
		{"nothing", nil},
		{"list/zzz/", nil},
		{"../", nil},
	} {
		page, err := b.List(ctx, bucket.ListOptions{Prefix: tc.prefix})
		if err != nil {
			t.Fatalf("List(%q): %v", tc.prefix, err)
		}
		if page.NextToken != "" {
			t.Errorf("List(%q): NextToken %q on a single page", tc.prefix, page.NextToken)
		}
		if got := keysOf(page.Objects); !slicesEqual(got, tc.want) {
			t.Errorf("List(%q) = %q; want %q", tc.prefix, got, tc.want)
		}
		for _, a := range page.Objects {
			i := indexOf(keys, a.Key)
			if a.Size != int64(i) || a.ETag != etags[a.Key] {
				t.Errorf("List(%q): %s has size %d, ETag %s; want %d, %s", tc.prefix, a.Key, a.Size, a.ETag, i, etags[a.Key])
			}
			if a.Metadata != nil {
				t.Errorf("List(%q): %s has metadata %v; want nil", tc.prefix, a.Key, a.Metadata)
			}
			if a.ModTime.IsZero() {
				t.Errorf("List(%q): %s has a zero ModTime", tc.prefix, a.Key)
			}
		}
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

func (s *suite) testListPaging(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	var want []string
	for i := 4; i >= 0; i-- {
		k := fmt.Sprintf("page/%d", i)
		upload(t, b, k, []byte(k), bucket.WriteOptions{})
		want = append([]string{k}, want...)
	}
	upload(t, b, "pagf", []byte("outside the prefix"), bucket.WriteOptions{})

	var got []string
	opts := bucket.ListOptions{Prefix: "page/", PageSize: 2}
	for pages := 1; ; pages++ {
		if pages > len(want)+1 {
			t.Fatalf("List did not end after %d pages (got %q so far)", pages-1, got)
		}
		page, err := b.List(ctx, opts)
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		if len(page.Objects) > 2 {
			t.Fatalf("List page %d has %d objects; PageSize is 2", pages, len(page.Objects))
		}
		if page.NextToken != "" && len(page.Objects) == 0 {
			t.Fatalf("List page %d is empty but not the last", pages)
		}
		got = append(got, keysOf(page.Objects)...)
		if page.NextToken == "" {
			break
		}
		opts.Token = page.NextToken
	}
	if !slicesEqual(got, want) {
		t.Fatalf("paged List = %q; want %q", got, want)
	}

	all, err := bucket.ListAll(ctx, b, "page/")
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(all); !slicesEqual(got, want) {
		t.Fatalf("ListAll = %q; want %q", got, want)
	}
	all, err = bucket.ListAll(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(all), append(want, "pagf"); !slicesEqual(got, want) {
		t.Fatalf("ListAll(\"\") = %q; want %q", got, want)
	}
}

func (s *suite) testCancelMidUpload(t *testing.T, b bucket.Bucket) {
	old := upload(t, b, "victim", []byte("the old version"), bucket.WriteOptions{Metadata: map[string]string{"v": "old"}})
	n := s.largeSize()
	for _, opts := range []bucket.WriteOptions{{}, {IfMatch: old.ETag}} {
		ctx, cancel := context.WithCancel(context.Background())
		src := &cancellingReader{r: bytes.NewReader(data(6, n)), after: n / 3, cancel: cancel}
		_, err := b.Upload(ctx, "victim", src, n, opts)
		cancel()
		if err == nil {
			t.Fatalf("Upload (%+v) whose context was cancelled after %d of %d bytes returned no error", opts, src.read.Load(), n)
		}
		if !src.cancelled.Load() {
			t.Fatalf("Upload failed before the context was cancelled: %v", err)
		}
		wantObject(t, b, "victim", []byte("the old version"), old.ETag)
		if md := stat(t, b, "victim").Metadata; md["v"] != "old" {
			t.Fatalf("metadata after a cancelled upload = %v", md)
		}
	}
	// A new key stays absent.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &cancellingReader{r: bytes.NewReader(data(7, n)), after: n / 3, cancel: cancel}
	if _, err := b.Upload(ctx, "never", src, n, bucket.WriteOptions{}); err == nil {
		t.Fatal("cancelled Upload of a new key returned no error")
	}
	wantNotFound(t, b, "never")
}

// cancellingReader cancels a context once more than after bytes have been
// read from it, and goes on serving reads.
type cancellingReader struct {
	r         io.ReaderAt
	after     int64
	cancel    context.CancelFunc
	read      atomic.Int64
	cancelled atomic.Bool
}

func (c *cancellingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if c.read.Add(int64(n)) > c.after && !c.cancelled.Swap(true) {
		c.cancel()
	}
	return n, err
}

func (s *suite) testCancelledContext(t *testing.T, b bucket.Bucket) {
	p := []byte("present")
	a := upload(t, b, "present", p, bucket.WriteOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var w writerAt
	if _, err := b.Stat(ctx, "present"); err == nil {
		t.Error("Stat with a cancelled context returned no error")
	}
	if _, err := b.Download(ctx, "present", &w); err == nil {
		t.Error("Download with a cancelled context returned no error")
	}
	if _, err := b.Upload(ctx, "new", bytes.NewReader(p), int64(len(p)), bucket.WriteOptions{}); err == nil {
		t.Error("Upload with a cancelled context returned no error")
	}
	if _, err := b.Upload(ctx, "present", bytes.NewReader([]byte("other")), 5, bucket.WriteOptions{}); err == nil {
		t.Error("overwriting Upload with a cancelled context returned no error")
	}
	if _, err := b.Copy(ctx, "present", "copied", bucket.CopyOptions{}); err == nil {
		t.Error("Copy with a cancelled context returned no error")
	}
	if err := b.Delete(ctx, "present"); err == nil {
		t.Error("Delete with a cancelled context returned no error")
	}
	if _, err := b.List(ctx, bucket.ListOptions{}); err == nil {
		t.Error("List with a cancelled context returned no error")
	}
	wantNotFound(t, b, "new")
	wantNotFound(t, b, "copied")
	wantObject(t, b, "present", p, a.ETag)
}

// badKeys are rejected by ValidateKey, and so by every backend.
var badKeys = []string{
	"", "/abs", "a/../b", "..", ".", "a//b", "./a", "a/.", "a/", `a\b`,
	"a\x00b", "a\nb", "tab\there", "del\x7f", "\xff\xfe", strings.Repeat("k", bucket.MaxKeyLen+1),
}

func (s *suite) testInvalidKeys(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	good := upload(t, b, "good", []byte("good"), bucket.WriteOptions{})
	for _, key := range badKeys {
		src := &countingReader{}
		_, err := b.Upload(ctx, key, src, 10, bucket.WriteOptions{})
		wantErr(t, err, bucket.ErrInvalidKey, "upload", key)
		if src.reads.Load() != 0 {
			t.Errorf("Upload(%q) read its source before rejecting the key", key)
		}
		_, err = b.Stat(ctx, key)
		wantErr(t, err, bucket.ErrInvalidKey, "stat", key)
		var w writerAt
		_, err = b.Download(ctx, key, &w)
		wantErr(t, err, bucket.ErrInvalidKey, "download", key)
		err = b.Delete(ctx, key)
		wantErr(t, err, bucket.ErrInvalidKey, "delete", key)
		_, err = b.Copy(ctx, key, "copy-dst", bucket.CopyOptions{})
		wantErr(t, err, bucket.ErrInvalidKey, "copy", key)
		if _, err := b.Copy(ctx, "good", key, bucket.CopyOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Copy to %q: error %v; want ErrInvalidKey", key, err)
		}
	}
	all, err := bucket.ListAll(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(all); !slicesEqual(got, []string{"good"}) {
		t.Errorf("after the invalid keys, the bucket holds %q; want only \"good\"", got)
	}
	wantObject(t, b, "good", []byte("good"), good.ETag)
}

// countingReader counts its reads and serves zeros.
type countingReader struct{ reads atomic.Int64 }

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	clear(p)
	return len(p), nil
}

func (s *suite) testConcurrentIfNoneMatch(t *testing.T, b bucket.Bucket) {
	const n = 8
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results [n]struct {
			a   bucket.Attrs
			err error
		}
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := data(uint64(100+i), 4096)
			<-start
			results[i].a, results[i].err = b.Upload(context.Background(), "race", bytes.NewReader(p), int64(len(p)), bucket.WriteOptions{IfNoneMatch: true})
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, r := range results {
		switch {
		case r.err == nil && winner >= 0:
			t.Fatalf("uploads %d and %d both succeeded with IfNoneMatch", winner, i)
		case r.err == nil:
			winner = i
		default:
			wantErr(t, r.err, bucket.ErrPrecondition, "upload", "race")
		}
	}
	if winner < 0 {
		t.Fatal("no IfNoneMatch upload succeeded")
	}
	wantObject(t, b, "race", data(uint64(100+winner), 4096), results[winner].a.ETag)
}

// writerAt is an io.WriterAt into memory, safe for concurrent use.
type writerAt struct {
	mu sync.Mutex
	p  []byte
}

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(w.p)) {
		w.p = append(w.p, make([]byte, end-int64(len(w.p)))...)
	}
	copy(w.p[off:], p)
	return len(p), nil
}

func (w *writerAt) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.p)
}
