package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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
			// included, must leave no temporary file behind, and no
			// sidecar without its object.
			t.Cleanup(func() { checkNoLeftovers(t, d.Root()) })
			return d
		},
	})
}

// checkNoLeftovers fails t if a temporary file is left under root, or a
// sidecar whose object file is gone.
func checkNoLeftovers(t *testing.T, root string) {
	t.Helper()
	objects := map[string]bool{} // sidecar paths of the object files
	var sidecars []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case e.IsDir() || p == filepath.Join(root, ".bucketsqlite.lock"):
		case strings.HasPrefix(e.Name(), ".bucketsqlite-tmp-"):
			t.Errorf("temporary file left behind: %s", p)
		case strings.HasPrefix(e.Name(), ".bucketsqlite"):
			sidecars = append(sidecars, p)
		default:
			objects[bucket.SidecarPath(p)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sidecars {
		if !objects[p] {
			t.Errorf("sidecar without its object file: %s", p)
		}
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
	ctx := context.Background()
	d := newDir(t)
	// Binary, and longer than one chunk of a copy.
	content := bytes.Repeat([]byte("\x00\x01SQLite format 3\x00\xff\n"), 70000)
	md := map[string]string{"m": "v"}
	if _, err := d.Upload(ctx, "a/b/c", bytes.NewReader(content), int64(len(content)), bucket.WriteOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Copy(ctx, "a/b/c", "copy", bucket.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"a/b/c", "copy"} {
		p := filepath.Join(d.Root(), filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("object file: %v", err)
		}
		if !bytes.Equal(b, content) {
			t.Errorf("%s: the file holds %d bytes, not exactly the %d uploaded", rel, len(b), len(content))
		}
		for _, f := range []string{p, bucket.SidecarPath(p)} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s has mode %v; want no access for group and others", f, perm)
			}
		}
		if st, err := d.Stat(ctx, rel); err != nil || !maps.Equal(st.Metadata, md) {
			t.Errorf("Stat(%q) = %+v, %v; want metadata %v", rel, st, err, md)
		}
	}
	if side := filepath.Base(bucket.SidecarPath(filepath.Join(d.Root(), "copy"))); side != ".bucketsqlite.copy.meta" {
		t.Errorf("sidecar of copy is %s", side)
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
		"dir/.bucketsqlite.obj.meta", ".bucketsqlite-sha256-00.meta",
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
	checkNoLeftovers(t, root)
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
	checkNoLeftovers(t, d.Root())
}

// wantNoMetadata checks that key holds content without metadata, with the
// ETag an Upload of the same content without metadata gets, the same from
// Stat, Download and List, and returns that ETag.
func wantNoMetadata(t *testing.T, d *bucket.Dir, key, content string) string {
	t.Helper()
	ctx := context.Background()
	want := put(t, d, "reference/"+key, content, nil).ETag
	if err := d.Delete(ctx, "reference/"+key); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		st, err := d.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		if st.ETag != want || st.Size != int64(len(content)) || len(st.Metadata) != 0 {
			t.Fatalf("Stat(%q) = %+v; want ETag %s, size %d, no metadata", key, st, want, len(content))
		}
	}
	var buf bytes.Buffer
	da, err := d.Download(ctx, key, writerAtBuffer{&buf})
	if err != nil {
		t.Fatalf("Download(%q): %v", key, err)
	}
	if buf.String() != content || da.ETag != want || len(da.Metadata) != 0 {
		t.Fatalf("Download(%q) = %q, %+v; want %q, ETag %s, no metadata", key, buf.String(), da, content, want)
	}
	page, err := d.List(ctx, bucket.ListOptions{Prefix: key})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.Objects[0].ETag != want || page.Objects[0].Size != int64(len(content)) {
		t.Fatalf("List(%q) = %+v; want one object, ETag %s, size %d", key, page.Objects, want, len(content))
	}
	return want
}

// writerAtBuffer is an io.WriterAt over a bytes.Buffer, for sequential
// writes only (Dir's Download makes no other).
type writerAtBuffer struct{ b *bytes.Buffer }

func (w writerAtBuffer) WriteAt(p []byte, off int64) (int, error) {
	if off != int64(w.b.Len()) {
		return 0, errors.New("out-of-order write")
	}
	return w.b.Write(p)
}

func TestDirPlainFile(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	content := "a file copied in by hand"
	if err := os.MkdirAll(filepath.Join(d.Root(), "hand"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.Root(), "hand", "made.db")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	etag := wantNoMetadata(t, d, "hand/made.db", content)

	// Conditions see that ETag.
	_, err := d.Upload(ctx, "hand/made.db", strings.NewReader("x"), 1, bucket.WriteOptions{IfNoneMatch: true})
	if !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("IfNoneMatch over a plain file: %v; want ErrPrecondition", err)
	}
	other := put(t, d, "other", "other", nil).ETag
	_, err = d.Upload(ctx, "hand/made.db", strings.NewReader("x"), 1, bucket.WriteOptions{IfMatch: other})
	if !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("IfMatch with another ETag over a plain file: %v; want ErrPrecondition", err)
	}
	if _, err := d.Copy(ctx, "hand/made.db", "copied", bucket.CopyOptions{IfSourceMatch: other}); !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("Copy of a plain file with another IfSourceMatch: %v; want ErrPrecondition", err)
	}
	wantNoMetadata(t, d, "hand/made.db", content)
	c, err := d.Copy(ctx, "hand/made.db", "copied", bucket.CopyOptions{IfSourceMatch: etag})
	if err != nil || c.ETag != etag {
		t.Fatalf("Copy of a plain file with its ETag = %+v, %v; want ETag %s", c, err, etag)
	}
	wantNoMetadata(t, d, "copied", content)

	md := map[string]string{"by": "dir"}
	a, err := d.Upload(ctx, "hand/made.db", strings.NewReader("replaced"), 8, bucket.WriteOptions{IfMatch: etag, Metadata: md})
	if err != nil {
		t.Fatalf("IfMatch with a plain file's ETag: %v", err)
	}
	if st, err := d.Stat(ctx, "hand/made.db"); err != nil || st.ETag != a.ETag || !maps.Equal(st.Metadata, md) {
		t.Fatalf("after replacing the plain file: %+v, %v; want ETag %s, metadata %v", st, err, a.ETag, md)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "replaced" {
		t.Fatalf("file after the upload: %q, %v", b, err)
	}
	checkNoLeftovers(t, d.Root())
}

func TestDirMetadataRoundTrip(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	md := map[string]string{"sha256": strings.Repeat("ab", 32), "note": `quotes " and \ backslash {json}`, "empty": ""}
	a := put(t, d, "k", "content", md)
	for _, key := range []string{"k", "copy"} {
		if key == "copy" {
			if _, err := d.Copy(ctx, "k", "copy", bucket.CopyOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		st, err := d.Stat(ctx, key)
		if err != nil || st.ETag != a.ETag || !maps.Equal(st.Metadata, md) {
			t.Errorf("Stat(%q) = %+v, %v; want ETag %s, metadata %v", key, st, err, a.ETag, md)
		}
	}
	// A second Dir on the root, as another process, reads them too.
	d2, err := bucket.NewDir(d.Root())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := d2.Stat(ctx, "k"); err != nil || !maps.Equal(st.Metadata, md) {
		t.Errorf("another Dir: %+v, %v", st, err)
	}
	// Metadata is dropped, not kept, by an overwrite without any.
	put(t, d, "k", "content", nil)
	if st, err := d.Stat(ctx, "k"); err != nil || len(st.Metadata) != 0 {
		t.Errorf("after an overwrite without metadata: %+v, %v", st, err)
	}
	big := map[string]string{"big": strings.Repeat("x", 70<<10)}
	_, err = d.Upload(ctx, "big", strings.NewReader("x"), 1, bucket.WriteOptions{Metadata: big})
	if !errors.Is(err, bucket.ErrInvalidMetadata) {
		t.Errorf("Upload with 70 KiB of metadata: %v; want ErrInvalidMetadata", err)
	}
}

// The object file is replaced, but its sidecar is not: a crash after the
// content's rename, before the sidecar's, if they were not ordered (or
// someone moving a file into place by hand). The stale metadata must not
// be paired with the new content.
func TestDirStaleSidecar(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	p := filepath.Join(d.Root(), "k")
	old := put(t, d, "k", "version one", map[string]string{"v": "1"})
	oldInfo, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, same modification time: only the inode differs.
	repl := filepath.Join(d.Root(), "replacement")
	if err := os.WriteFile(repl, []byte("version two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(repl, oldInfo.ModTime(), oldInfo.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repl, p); err != nil {
		t.Fatal(err)
	}
	etag := wantNoMetadata(t, d, "k", "version two")
	if etag == old.ETag {
		t.Fatal("the new content kept the old ETag")
	}
	_, err = d.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{IfMatch: old.ETag})
	if !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("IfMatch with the stale ETag: %v; want ErrPrecondition", err)
	}
	if _, err := d.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{IfMatch: etag}); err != nil {
		t.Fatalf("IfMatch with the content's ETag: %v", err)
	}
}

// A crash between a write's two renames leaves the new sidecar beside the
// old object file: the old object, metadata and all, is still there.
func TestDirCrashBetweenRenames(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	p := filepath.Join(d.Root(), "k")
	old := put(t, d, "k", "version one", map[string]string{"v": "1"})
	// Keep the old object file (same inode and times) through a hard link.
	saved := filepath.Join(d.Root(), "saved")
	if err := os.Link(p, saved); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	put(t, d, "k", "version two, longer", map[string]string{"v": "2"})
	if err := os.Rename(saved, p); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stat(ctx, "k")
	if err != nil || st.ETag != old.ETag || st.Metadata["v"] != "1" || st.Size != int64(len("version one")) {
		t.Fatalf("Stat = %+v, %v; want the old object, ETag %s", st, err, old.ETag)
	}
	// A writer that saw the old object can still replace it.
	a, err := d.Upload(ctx, "k", strings.NewReader("three"), 5, bucket.WriteOptions{IfMatch: old.ETag, Metadata: map[string]string{"v": "3"}})
	if err != nil {
		t.Fatalf("IfMatch with the old object's ETag: %v", err)
	}
	if st, err := d.Stat(ctx, "k"); err != nil || st.ETag != a.ETag || st.Metadata["v"] != "3" {
		t.Fatalf("Stat = %+v, %v; want the third version", st, err)
	}
}

func TestDirEditedByHand(t *testing.T) {
	d := newDir(t)
	p := filepath.Join(d.Root(), "k")
	old := put(t, d, "k", "content", map[string]string{"m": "1"})
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(", and more"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if etag := wantNoMetadata(t, d, "k", "content, and more"); etag == old.ETag {
		t.Fatal("an edited file kept its ETag")
	}
	if err := os.Truncate(p, 3); err != nil {
		t.Fatal(err)
	}
	wantNoMetadata(t, d, "k", "con")
}

// A sidecar that is not valid JSON, or describes nothing, is ignored.
func TestDirDamagedSidecar(t *testing.T) {
	d := newDir(t)
	put(t, d, "k", "content", map[string]string{"m": "1"})
	side := bucket.SidecarPath(filepath.Join(d.Root(), "k"))
	for _, junk := range []string{"", "{", "null", `{"current":null}`, `{"current":{"etag":"x"}}`, strings.Repeat(" ", 1<<20) + "{}"} {
		if err := os.WriteFile(side, []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		wantNoMetadata(t, d, "k", "content")
	}
}

// Failed and cancelled writes leave no temporary file, no sidecar for an
// object they did not write and no directory they made.
func TestDirFailedWritesLeaveNothing(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	present := put(t, d, "present", "present", map[string]string{"v": "1"})
	put(t, d, "dir/obj", "x", nil)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		key  string
		src  io.ReaderAt
		opts bucket.WriteOptions
		ctx  context.Context
		copy bool // a Copy to the key fails too
	}{
		{name: "IfNoneMatch over an object", key: "present", opts: bucket.WriteOptions{IfNoneMatch: true}},
		{name: "IfMatch on a stale ETag", key: "present", opts: bucket.WriteOptions{IfMatch: `"00000000000000000000000000000000"`}},
		{name: "IfMatch on an absent key", key: "absent", opts: bucket.WriteOptions{IfMatch: present.ETag}},
		{name: "IfMatch in a new directory", key: "new/sub/absent", opts: bucket.WriteOptions{IfMatch: present.ETag}},
		{name: "a directory at the key", key: "dir", copy: true},
		{name: "an object above the key", key: "present/below", copy: true},
		{name: "failing source", key: "present", src: failingReader{boom}},
		{name: "failing source in a new directory", key: "fresh/key", src: failingReader{boom}},
		{name: "cancelled", key: "fresh/key", ctx: cancelled, copy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctx
			if tc.ctx != nil {
				ctx = tc.ctx
			}
			src := tc.src
			if src == nil {
				src = strings.NewReader("new content")
			}
			if _, err := d.Upload(ctx, tc.key, src, 11, tc.opts); err == nil {
				t.Fatal("Upload returned no error")
			}
			if tc.copy {
				if _, err := d.Copy(ctx, "present", tc.key, bucket.CopyOptions{}); err == nil {
					t.Fatal("Copy returned no error")
				}
			}
			st, err := d.Stat(context.Background(), "present")
			if err != nil || st.ETag != present.ETag || st.Metadata["v"] != "1" {
				t.Fatalf("present after the failed write: %+v, %v", st, err)
			}
			checkNoLeftovers(t, d.Root())
			all, err := bucket.ListAll(context.Background(), d, "")
			if err != nil || len(all) != 2 {
				t.Fatalf("List = %+v, %v; want present and dir/obj", all, err)
			}
		})
	}
	for _, rel := range []string{"new", "fresh"} {
		if _, err := os.Stat(filepath.Join(d.Root(), rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("directory %s, made by a failed write, remains: %v", rel, err)
		}
	}
	// So its name is free for an object.
	put(t, d, "new", "an object", nil)
}

func TestDirDeleteRemovesSidecar(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	put(t, d, "a/b", "x", map[string]string{"m": "1"})
	if err := d.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory a, emptied by the delete, remains: %v", err)
	}
	// A sidecar without its object, as a crash can leave, goes too.
	if err := os.MkdirAll(filepath.Join(d.Root(), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	orphan := bucket.SidecarPath(filepath.Join(d.Root(), "x", "y"))
	if err := os.WriteFile(orphan, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "x/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory x, holding only an orphan sidecar, remains: %v", err)
	}
}

// A name too long to take the sidecar's prefix and suffix gets a sidecar
// named by its hash.
func TestDirLongName(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	key := "long/" + strings.Repeat("n", 250)
	md := map[string]string{"m": "1"}
	a := put(t, d, key, "content", md)
	if st, err := d.Stat(ctx, key); err != nil || st.ETag != a.ETag || !maps.Equal(st.Metadata, md) {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	side := bucket.SidecarPath(filepath.Join(d.Root(), filepath.FromSlash(key)))
	if name := filepath.Base(side); len(name) > 255 || !strings.HasPrefix(name, ".bucketsqlite") {
		t.Errorf("sidecar name %q", name)
	}
	if _, err := os.Stat(side); err != nil {
		t.Fatal(err)
	}
	all, err := bucket.ListAll(ctx, d, "")
	if err != nil || len(all) != 1 || all[0].Key != key {
		t.Fatalf("List = %+v, %v; want only %s", all, err, key)
	}
	if err := d.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, d.Root())
	if _, err := os.Stat(filepath.Join(d.Root(), "long")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory long remains after the delete: %v", err)
	}
}

// Readers racing a writer that replaces and deletes an object see each
// version whole: its content with its own metadata and ETag, never new
// content with old metadata, nor an object without its metadata.
func TestDirReadersDuringWrites(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	const writes = 60
	content := func(n string) string { return "content of version " + n }
	etags := make(map[string]string) // version -> ETag, from the writer
	first := put(t, d, "k", content("0"), map[string]string{"n": "0"})
	etags["0"] = first.ETag

	done := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]string{} // ETag -> version, from the readers
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				var (
					a   bucket.Attrs
					got string
					err error
				)
				if (i+r)%2 == 0 {
					a, err = d.Stat(ctx, "k")
				} else {
					var buf bytes.Buffer
					a, err = d.Download(ctx, "k", writerAtBuffer{&buf})
					got = buf.String()
				}
				if errors.Is(err, bucket.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				n, ok := a.Metadata["n"]
				if !ok || a.Size != int64(len(content(n))) || got != "" && got != content(n) {
					t.Errorf("read %+v, content %q: not a whole version", a, got)
					return
				}
				mu.Lock()
				if prev, dup := seen[a.ETag]; dup && prev != n {
					t.Errorf("ETag %s seen for versions %s and %s", a.ETag, prev, n)
				}
				seen[a.ETag] = n
				mu.Unlock()
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		n := strconv.Itoa(i)
		if i%10 == 0 {
			if err := d.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
		}
		a := put(t, d, "k", content(n), map[string]string{"n": n})
		mu.Lock()
		etags[n] = a.ETag
		mu.Unlock()
	}
	close(done)
	wg.Wait()
	for etag, n := range seen {
		if etags[n] != etag {
			t.Errorf("readers saw version %s with ETag %s; the writer got %s", n, etag, etags[n])
		}
	}
	checkNoLeftovers(t, d.Root())
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
