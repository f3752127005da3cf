package fsutil_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

// onlyFiles fails unless dir holds exactly the named files: no temporary
// file left behind.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %q; want %q", dir, got, names)
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("%s holds %q; want %q", dir, got, names)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, data := range []string{"first", "second, longer than the first", ""} {
		if err := fsutil.WriteFileAtomic(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("read back %q, %v; want %q", got, err, data)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	onlyFiles(t, dir, "state.json")

	// Another mode is set before the rename, not after.
	if err := fsutil.WriteFileAtomic(path, []byte("shared"), 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", fi.Mode().Perm(), err)
	}
}

func TestWriteFileAtomicFailure(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", "f")
	err := fsutil.WriteFileAtomic(missing, []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFileAtomic into a missing directory = %v; want not-exist", err)
	}
	// A directory in the way: the rename fails, the temporary file goes.
	blocked := filepath.Join(dir, "blocked")
	if err := os.Mkdir(blocked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blocked, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFileAtomic(blocked, []byte("x"), 0o600); err == nil {
		t.Fatal("WriteFileAtomic over a non-empty directory returned nil")
	}
	onlyFiles(t, dir, "blocked")
}

func TestTempFile(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "obj")
	if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Discarded: the destination keeps its content, nothing is left.
	tf, err := fsutil.CreateTemp(dst, ".reserved-tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(tf.Name()) != dir || filepath.Base(tf.Name())[:14] != ".reserved-tmp-" {
		t.Fatalf("temporary file %s; want .reserved-tmp-* in %s", tf.Name(), dir)
	}
	if fi, err := tf.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("temporary file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	tf.WriteString("new")
	tf.Discard()
	tf.Discard()
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Fatalf("a discarded file changed the destination: %q", got)
	}
	onlyFiles(t, dir, "obj")

	// Committed: the destination has the new content; Discard after Commit
	// does not remove it.
	tf, err = fsutil.CreateTemp(dst, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Discard()
	tf.WriteString("new")
	if err := tf.Commit(); err != nil {
		t.Fatal(err)
	}
	tf.Discard()
	if got, _ := os.ReadFile(dst); string(got) != "new" {
		t.Fatalf("after Commit the destination holds %q", got)
	}
	onlyFiles(t, dir, "obj")

	// Renamed by the caller's own steps.
	tf, err = fsutil.CreateTemp(dst, "")
	if err != nil {
		t.Fatal(err)
	}
	tf.WriteString("newer")
	if err := tf.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := tf.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tf.Rename(); err != nil {
		t.Fatal(err)
	}
	tf.Discard()
	if err := fsutil.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "newer" {
		t.Fatalf("after Rename the destination holds %q", got)
	}
	onlyFiles(t, dir, "obj")
}
