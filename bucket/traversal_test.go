package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// traversalKeys try to leave a directory bucket's root. The conformance
// suite checks the basic bad keys on every backend; these are the ones an
// attacker controlling a key (a DSN, a user-supplied name) would try.
var traversalKeys = []string{
	"..", "../x", "../../x", "../../../../../../etc/passwd", "a/../../x", "a/..", "a/b/../../../x",
	`..\x`, `a\..\..\x`, "./../x", "/etc/passwd", "//x", "a/./../x", "../",
	".bucketsqlite.lock", "a/.bucketsqlite-tmp-1", ".BucketSQLite.lock",
}

// literalKeys look like traversal but are plain names: they must stay
// inside the root.
var literalKeys = []string{"%2e%2e/x", "..x", "x..", "a/...", "．．/x", "a/..b/c"}

// TestDirRejectsTraversal checks that no key reaches outside a directory
// bucket's root, with every operation, and that names that only look like
// traversal stay inside it.
func TestDirRejectsTraversal(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	b, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	// Something outside the root that a traversal would reach.
	outside := filepath.Join(parent, "x")
	if err := os.WriteFile(outside, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Upload(ctx, "a/b/c", bytes.NewReader([]byte("in")), 2, bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, key := range traversalKeys {
		_, err := b.Upload(ctx, key, bytes.NewReader([]byte("evil")), 4, bucket.WriteOptions{})
		if !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Upload(%q) = %v; want ErrInvalidKey", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v; want ErrInvalidKey", key, err)
		}
		var w bytes.Buffer
		if _, err := b.Download(ctx, key, writerAtBuf{&w}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Download(%q) = %v; want ErrInvalidKey", key, err)
		}
		if _, err := b.Copy(ctx, "a/b/c", key, bucket.CopyOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Copy to %q = %v; want ErrInvalidKey", key, err)
		}
		if _, err := b.Copy(ctx, key, "copied", bucket.CopyOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Copy from %q = %v; want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidKey", key, err)
		}
	}
	for _, key := range literalKeys {
		if _, err := b.Upload(ctx, key, bytes.NewReader([]byte("lit")), 3, bucket.WriteOptions{}); err != nil {
			t.Errorf("Upload(%q): %v", key, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(key))); err != nil {
			t.Errorf("%q is not stored under the root: %v", key, err)
		}
	}
	if data, _ := os.ReadFile(outside); string(data) != "outside" {
		t.Fatal("a key reached a file outside the root")
	}
	ents, _ := os.ReadDir(parent)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"root", "x"}) {
		t.Fatalf("the root's parent holds %q; want only root and x", names)
	}
	// A List with a traversing prefix lists only the bucket's own keys
	// ("..x" starts with "..").
	stored := append([]string{"a/b/c"}, literalKeys...)
	for _, prefix := range []string{"../", "..", "/", "../root/"} {
		all, err := bucket.ListAll(ctx, b, prefix)
		if err != nil {
			continue
		}
		for _, a := range all {
			if !slices.Contains(stored, a.Key) {
				t.Errorf("List(%q) returned %q, which is no object of the bucket", prefix, a.Key)
			}
		}
	}
}

type writerAtBuf struct{ b *bytes.Buffer }

func (w writerAtBuf) WriteAt(p []byte, off int64) (int, error) { return w.b.Write(p) }
