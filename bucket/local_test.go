package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Tests of what Memory and Dir promise beyond the conformance suite.

// forEachLocal runs f as a subtest against a new Memory and a new Dir.
func forEachLocal(t *testing.T, f func(t *testing.T, b bucket.Bucket)) {
	t.Run("Memory", func(t *testing.T) { f(t, bucket.NewMemory()) })
	t.Run("Dir", func(t *testing.T) { f(t, newDir(t)) })
}

func newDir(t *testing.T) *bucket.Dir {
	t.Helper()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func put(t *testing.T, b bucket.Bucket, key, content string, md map[string]string) bucket.Attrs {
	t.Helper()
	a, err := b.Upload(context.Background(), key, bytes.NewReader([]byte(content)), int64(len(content)), bucket.WriteOptions{Metadata: md})
	if err != nil {
		t.Fatalf("Upload(%q): %v", key, err)
	}
	return a
}

func TestLocalETags(t *testing.T) {
	forEachLocal(t, func(t *testing.T, b bucket.Bucket) {
		a1 := put(t, b, "k", "content", map[string]string{"m": "1"})
		if a := put(t, b, "k", "content", map[string]string{"m": "1"}); a.ETag != a1.ETag {
			t.Errorf("same content and metadata: ETag %s, then %s", a1.ETag, a.ETag)
		}
		if a := put(t, b, "k", "content", map[string]string{"m": "2"}); a.ETag == a1.ETag {
			t.Error("a metadata change kept the ETag")
		}
		if a := put(t, b, "k", "content", nil); a.ETag == a1.ETag {
			t.Error("dropping the metadata kept the ETag")
		}
		// Length-prefixing keeps key/value boundaries apart.
		x := put(t, b, "x", "c", map[string]string{"ab": "c"})
		y := put(t, b, "y", "c", map[string]string{"a": "bc"})
		if x.ETag == y.ETag {
			t.Error("metadata {ab:c} and {a:bc} gave the same ETag")
		}
		c, err := b.Copy(context.Background(), "x", "z", bucket.CopyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.ETag != x.ETag {
			t.Errorf("a copy has ETag %s; its source %s", c.ETag, x.ETag)
		}
	})
}

func TestLocalInvalidMetadata(t *testing.T) {
	for _, md := range []map[string]string{
		{"": "empty key"},
		{"Upper": "x"},
		{"space key": "x"},
		{"k": "newline\n"},
		{"k": "non-ascii é"},
	} {
		forEachLocal(t, func(t *testing.T, b bucket.Bucket) {
			_, err := b.Upload(context.Background(), "k", bytes.NewReader([]byte("x")), 1, bucket.WriteOptions{Metadata: md})
			if !errors.Is(err, bucket.ErrInvalidMetadata) {
				t.Fatalf("Upload with metadata %q: %v; want ErrInvalidMetadata", md, err)
			}
			if _, err := b.Stat(context.Background(), "k"); !errors.Is(err, bucket.ErrNotFound) {
				t.Fatalf("rejected Upload stored an object: %v", err)
			}
		})
	}
	if err := bucket.ValidateMetadata(map[string]string{"snapshot-v1.page_size": "4096 ~!"}); err != nil {
		t.Errorf("ValidateMetadata rejected valid metadata: %v", err)
	}
}

// failingReader fails every read with err.
type failingReader struct{ err error }

func (f failingReader) ReadAt(p []byte, off int64) (int, error) { return 0, f.err }

func TestLocalBadSource(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	forEachLocal(t, func(t *testing.T, b bucket.Bucket) {
		old := put(t, b, "k", "old", nil)
		for _, tc := range []struct {
			name string
			src  io.ReaderAt
			size int64
			want error
		}{
			{"short", bytes.NewReader([]byte("short")), 10, io.ErrUnexpectedEOF},
			{"failing", failingReader{boom}, 10, boom},
			{"nil", nil, 10, nil},
			{"negative size", bytes.NewReader(nil), -1, nil},
		} {
			_, err := b.Upload(ctx, "k", tc.src, tc.size, bucket.WriteOptions{})
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("%s source: Upload error %v; want %v", tc.name, err, tc.want)
			}
			var be *bucket.Error
			if !errors.As(err, &be) || be.Op != "upload" || be.Key != "k" {
				t.Errorf("%s source: error %v is not a *bucket.Error for upload \"k\"", tc.name, err)
			}
			if st, err := b.Stat(ctx, "k"); err != nil || st.ETag != old.ETag {
				t.Errorf("%s source: old object replaced: %+v, %v", tc.name, st, err)
			}
		}
	})
}

func TestLocalCancelIsContextError(t *testing.T) {
	forEachLocal(t, func(t *testing.T, b bucket.Bucket) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := b.Upload(ctx, "k", bytes.NewReader([]byte("x")), 1, bucket.WriteOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Upload with a cancelled context: %v; want context.Canceled", err)
		}
		_, err = b.Stat(ctx, "k")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Stat with a cancelled context: %v; want context.Canceled", err)
		}
	})
}

func TestLocalListTokens(t *testing.T) {
	ctx := context.Background()
	forEachLocal(t, func(t *testing.T, b bucket.Bucket) {
		for _, k := range []string{"p/1", "p/2", "p/3"} {
			put(t, b, k, k, nil)
		}
		// A token is the last key of a page; one that names no object
		// still continues after it.
		page, err := b.List(ctx, bucket.ListOptions{Prefix: "p/", Token: "p/1x"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Objects) != 2 || page.Objects[0].Key != "p/2" || page.NextToken != "" {
			t.Errorf("List after token p/1x = %+v", page)
		}
		page, err = b.List(ctx, bucket.ListOptions{Prefix: "p/", PageSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Objects) != 3 || page.NextToken != "" {
			t.Errorf("a page that holds exactly the rest: %d objects, token %q; want 3, \"\"", len(page.Objects), page.NextToken)
		}
	})
}
