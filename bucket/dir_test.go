package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/buckettest"
)

func TestDirConformance(t *testing.T) {
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket {
			d := newDir(t)
			// Every behaviour of the suite, failed and cancelled writes
			// included, must leave no temporary file behind.
			t.Cleanup(func() { checkNoTemp(t, d.Root()) })
			return d
		},
	})
}

// checkNoTemp fails t if a temporary file is left under root.
func checkNoTemp(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".bucketsqlite-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "new", "root")
	d, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(d.Root()) {
		t.Errorf("Root() = %q; want an absolute path", d.Root())
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("NewDir did not create its root: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bucket.NewDir(file); err == nil {
		t.Error("NewDir on a file returned no error")
	}
	if _, err := bucket.NewDir(""); err == nil {
		t.Error("NewDir(\"\") returned no error")
	}
}

// sameDir reports whether a and b name the same directory.
func sameDir(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func TestDirSymlinkedRoot(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	d, err := bucket.NewDir(link)
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, "k", "v", nil)
	all, err := bucket.ListAll(context.Background(), d, "")
	if err != nil || len(all) != 1 {
		t.Fatalf("List of a root reached through a symbolic link = %v, %v; want the one object", all, err)
	}
	if !sameDir(t, d.Root(), real) {
		t.Errorf("Root() = %q; want %q", d.Root(), real)
	}
}

func TestDirLayoutAndModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	d := newDir(t)
	content := "the content"
	put(t, d, "a/b/c", content, map[string]string{"m": "v"})
	if _, err := d.Copy(context.Background(), "a/b/c", "copy", bucket.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"a/b/c", "copy"} {
		p := filepath.Join(d.Root(), filepath.FromSlash(rel))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("object file: %v", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v; want no access for group and others", rel, perm)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "BSQLOBJ\x01") || !strings.HasSuffix(string(b), content) {
			t.Errorf("%s: want the header then the content, got %q", rel, b)
		}
	}
	for _, rel := range []string{"a", "a/b"} {
		fi, err := os.Stat(filepath.Join(d.Root(), rel))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 || perm&0o700 != 0o700 {
			t.Errorf("directory %s has mode %v; want rwx for the owner only", rel, perm)
		}
	}
	fi, err := os.Stat(filepath.Join(d.Root(), ".bucketsqlite.lock"))
	if err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("lock file has mode %v", perm)
	}
}

func TestDirReservedKeys(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	put(t, d, "dir/obj", "x", nil) // creates the lock file
	// A crash can leave a temporary file behind.
	stray := filepath.Join(d.Root(), "dir", ".bucketsqlite-tmp-123")
	if err := os.WriteFile(stray, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		".bucketsqlite.lock", "dir/.bucketsqlite-tmp-123", ".BucketSQLite.LOCK",
		".bucketsqlite", "dir/.bucketsqlite/x", "x/.bucketsqlite-anything",
	} {
		_, err := d.Stat(ctx, key)
		if !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v; want ErrInvalidKey", key, err)
		}
		_, err = d.Upload(ctx, key, bytes.NewReader(nil), 0, bucket.WriteOptions{})
		if !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Upload(%q): %v; want ErrInvalidKey", key, err)
		}
		if err := d.Delete(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v; want ErrInvalidKey", key, err)
		}
		_, err = d.Copy(ctx, "dir/obj", key, bucket.CopyOptions{})
		if !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Copy to %q: %v; want ErrInvalidKey", key, err)
		}
	}
	all, err := bucket.ListAll(ctx, d, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Key != "dir/obj" {
		t.Errorf("List shows %+v; want only dir/obj", all)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("the stray temporary file was touched: %v", err)
	}
}

func TestDirSharedRoot(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d1, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	a := put(t, d1, "shared/obj", "from d1", map[string]string{"by": "d1"})
	st, err := d2.Stat(ctx, "shared/obj")
	if err != nil || st.ETag != a.ETag || st.Metadata["by"] != "d1" {
		t.Fatalf("d2 sees %+v, %v; want d1's object", st, err)
	}
	_, err = d2.Upload(ctx, "shared/obj", bytes.NewReader(nil), 0, bucket.WriteOptions{IfNoneMatch: true})
	if !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("d2's IfNoneMatch over d1's object: %v", err)
	}
	if err := d2.Delete(ctx, "shared/obj"); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Stat(ctx, "shared/obj"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("d1 still sees the object d2 deleted: %v", err)
	}

	// Conditional writes through several Dirs on one root exclude each
	// other: for each key exactly one IfNoneMatch upload wins.
	dirs := []*bucket.Dir{d1, d2}
	for range 2 {
		d, err := bucket.NewDir(root)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	const keys = 20
	wins := make([][]int, len(dirs))
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				p := []byte{byte(i)}
				_, err := d.Upload(ctx, "race/"+string(rune('a'+k)), bytes.NewReader(p), 1, bucket.WriteOptions{IfNoneMatch: true})
				if err == nil {
					wins[i] = append(wins[i], k)
				} else if !errors.Is(err, bucket.ErrPrecondition) {
					t.Errorf("dir %d key %d: %v", i, k, err)
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, w := range wins {
		total += len(w)
	}
	if total != keys {
		t.Fatalf("%d IfNoneMatch uploads won over %d keys; want one per key", total, keys)
	}
	checkNoTemp(t, root)
}

func TestDirKeyConflicts(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	file := put(t, d, "a", "object a", nil)
	if _, err := d.Upload(ctx, "a/b", bytes.NewReader([]byte("x")), 1, bucket.WriteOptions{}); err == nil {
		t.Error(`Upload("a/b") over the object "a" returned no error`)
	}
	put(t, d, "x/y", "object x/y", nil)
	if _, err := d.Upload(ctx, "x", bytes.NewReader([]byte("x")), 1, bucket.WriteOptions{}); err == nil {
		t.Error(`Upload("x") over the directory of "x/y" returned no error`)
	}
	if _, err := d.Copy(ctx, "a", "x", bucket.CopyOptions{}); err == nil {
		t.Error(`Copy to "x" over the directory of "x/y" returned no error`)
	}
	if st, err := d.Stat(ctx, "a"); err != nil || st.ETag != file.ETag {
		t.Errorf(`"a" after the conflicts: %+v, %v`, st, err)
	}
	if _, err := d.Stat(ctx, "a/b"); !errors.Is(err, bucket.ErrNotFound) {
		t.Errorf(`Stat("a/b") below the object "a": %v; want ErrNotFound`, err)
	}
	checkNoTemp(t, d.Root())
}

func TestDirForeignAndCorruptFiles(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	put(t, d, "good", "good", nil)
	if err := os.WriteFile(filepath.Join(d.Root(), "foreign"), []byte("not an object"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := put(t, d, "truncated", "some content", nil)
	if err := os.Truncate(filepath.Join(d.Root(), "truncated"), 20); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"foreign", "truncated"} {
		if _, err := d.Stat(ctx, key); err == nil || errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("Stat(%q): %v; want an error other than ErrNotFound", key, err)
		}
		// A condition cannot be checked against it, so the write fails.
		_, err := d.Upload(ctx, key, bytes.NewReader(nil), 0, bucket.WriteOptions{IfMatch: a.ETag})
		if err == nil || errors.Is(err, bucket.ErrPrecondition) {
			t.Errorf("IfMatch Upload over %q: %v; want an error other than ErrPrecondition", key, err)
		}
	}
	// List skips files Dir did not write, and fails on damaged ones.
	if _, err := d.List(ctx, bucket.ListOptions{Prefix: "truncated"}); err == nil {
		t.Error("List over a truncated object returned no error")
	}
	page, err := d.List(ctx, bucket.ListOptions{Prefix: "foreign"})
	if err != nil || len(page.Objects) != 0 {
		t.Errorf("List over a foreign file = %+v, %v; want nothing", page, err)
	}
	// An unconditional write replaces either.
	put(t, d, "truncated", "fixed", nil)
	checkNoTemp(t, d.Root())
}

func TestDirDeletePrunesDirectories(t *testing.T) {
	d := newDir(t)
	put(t, d, "p/q/r", "x", nil)
	put(t, d, "p/s", "x", nil)
	if err := d.Delete(context.Background(), "p/q/r"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "p", "q")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty directory p/q left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "p")); err != nil {
		t.Errorf("non-empty directory p removed: %v", err)
	}
	if _, err := os.Stat(d.Root()); err != nil {
		t.Errorf("root removed: %v", err)
	}
	if err := d.Delete(context.Background(), "p/s"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Root()); err != nil {
		t.Errorf("root removed: %v", err)
	}
}
