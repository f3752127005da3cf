package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// Dir is a Bucket kept in a directory of the local file system: the object
// at key "a/b" is the file ROOT/a/b. Each file holds a small header (the
// object's ETag and metadata) before the content; see dirobj.go for the
// format and why.
//
// Writes are atomic and durable: Upload and Copy write a temporary file in
// the object's directory, fsync it, take the root's lock, check the write's
// conditions, rename the file into place and fsync the directory. The lock
// is an flock(2) on ROOT/.bucketsqlite.lock, so conditional writes exclude
// each other across goroutines, Dir values and processes sharing the root
// (on systems without flock, only within one process). A failed or
// cancelled write removes its temporary file; only a crash can leave one
// behind, and List ignores it.
//
// Files are created with mode 0600 and directories with 0700 (less the
// umask): a bucket holds database snapshots, which are nobody else's
// business. Directories are created as needed and removed by Delete when it
// leaves them empty.
//
// Names that start with ".bucketsqlite" (in any case) are Dir's own: a key
// with such a path segment is rejected with ErrInvalidKey. Because a file
// cannot also be a directory, a Dir cannot hold both "a" and "a/b": the
// second write fails. On a case-insensitive file system, keys that differ
// only in case name the same object.
type Dir struct {
	root string
}

var _ Bucket = (*Dir)(nil)

const (
	// reservedPrefix starts the names of Dir's own files.
	reservedPrefix = ".bucketsqlite"
	// lockName is the lock file, in the root.
	lockName = reservedPrefix + ".lock"
	// tempPattern names temporary files, in the object's directory.
	tempPattern = reservedPrefix + "-tmp-*"
	// dirMode and fileMode are the permissions of what Dir creates.
	dirMode  = 0o700
	fileMode = 0o600
)

// errConflict means a key's path runs into a file where a directory is
// needed, or a directory where the object's file should go.
var errConflict = errors.New(`a key cannot name both an object and a directory of objects (as "a" and "a/b" would)`)

// NewDir returns a bucket kept under the directory root, creating root
// (mode 0700) if it does not exist. Two Dirs on the same root, in one
// process or several, see each other's objects.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("bucket: dir: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("bucket: dir: %w", err)
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("bucket: dir: %w", err)
	}
	// List walks the root, and a walk does not follow a symbolic link to
	// its starting directory: keep the real path.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("bucket: dir: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("bucket: dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("bucket: dir: %s is not a directory", real)
	}
	return &Dir{root: real}, nil
}

// Root returns the absolute path of the directory that holds the bucket,
// with symbolic links resolved.
func (d *Dir) Root() string { return d.root }

// checkDirKey applies ValidateKey and rejects keys that reach Dir's own files.
func checkDirKey(key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if isReserved(seg) {
			return fmt.Errorf("%w %q: segment %q starts with %q, which bucket.Dir reserves for its own files",
				ErrInvalidKey, key, seg, reservedPrefix)
		}
	}
	return nil
}

// isReserved reports whether a file name belongs to Dir itself. It ignores
// case, for case-insensitive file systems.
func isReserved(name string) bool {
	return len(name) >= len(reservedPrefix) && strings.EqualFold(name[:len(reservedPrefix)], reservedPrefix)
}

// path returns the file of the object at a valid key.
func (d *Dir) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// Stat implements Bucket.
func (d *Dir) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := firstErr(checkDirKey(key), ctx.Err()); err != nil {
		return Attrs{}, wrap("stat", key, err)
	}
	f, a, _, err := d.open(key)
	if err != nil {
		return Attrs{}, wrap("stat", key, err)
	}
	f.Close()
	return a, nil
}

// Download implements Bucket.
func (d *Dir) Download(ctx context.Context, key string, dst io.WriterAt) (Attrs, error) {
	if err := firstErr(checkDirKey(key), ctx.Err()); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	f, a, off, err := d.open(key)
	if err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	defer f.Close()
	if err := writeDest(ctx, dst, io.NewSectionReader(f, off, a.Size), a.Size); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	return a, nil
}

// open opens the object file at key and reads its header. It returns the
// open file (which keeps this version readable even if it is replaced),
// the object's attributes and the offset of its content.
func (d *Dir) open(key string) (*os.File, Attrs, int64, error) {
	f, err := os.Open(d.path(key))
	if err != nil {
		if isNotExist(err) {
			err = ErrNotFound
		}
		return nil, Attrs{}, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Attrs{}, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, Attrs{}, 0, ErrNotFound
	}
	h, off, err := readHeader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, Attrs{}, 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	a := Attrs{Key: key, Size: h.Size, ETag: h.ETag, ModTime: fi.ModTime(), Metadata: cloneMetadata(h.Metadata)}
	return f, a, off, nil
}

// isNotExist reports whether err means a path does not exist, including
// because one of its parents is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Upload implements Bucket.
func (d *Dir) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error) {
	if err := firstErr(checkDirKey(key), ValidateMetadata(opts.Metadata), ctx.Err()); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	if size < 0 {
		return Attrs{}, wrap("upload", key, fmt.Errorf("negative size %d", size))
	}
	md := cloneMetadata(opts.Metadata)
	var check func(exists bool, etag string) error
	if opts.IfNoneMatch || opts.IfMatch != "" {
		check = func(exists bool, etag string) error { return checkWrite(exists, etag, opts) }
	}
	a, err := d.write(ctx, key, func(f *os.File) (objHeader, error) {
		h := objHeader{ETag: placeholderETag, Size: size, Metadata: md}
		hb, err := encodeHeader(h)
		if err != nil {
			return h, err
		}
		if _, err := f.Write(hb); err != nil {
			return h, err
		}
		sum := newContentHash()
		err = readSource(ctx, src, size, func(p []byte) error {
			sum.Write(p)
			_, err := f.Write(p)
			return err
		})
		if err != nil {
			return h, err
		}
		h.ETag = localETag(sum.Sum(nil), md)
		final, err := encodeHeader(h)
		if err != nil {
			return h, err
		}
		if len(final) != len(hb) {
			return h, fmt.Errorf("header length changed from %d to %d", len(hb), len(final))
		}
		_, err = f.WriteAt(final, 0)
		return h, err
	}, check)
	return a, wrap("upload", key, err)
}

// Copy implements Bucket.
func (d *Dir) Copy(ctx context.Context, src, dst string, opts CopyOptions) (Attrs, error) {
	if err := firstErr(checkDirKey(src), checkDirKey(dst), ctx.Err()); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	// The open file pins the source version whose ETag is checked, so the
	// copy is of that version even if the source is replaced meanwhile.
	f, sa, off, err := d.open(src)
	if err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	defer f.Close()
	if err := checkCopy(sa.ETag, opts); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	// Same content and metadata: the whole file, header included, is the
	// new object's file.
	total := off + sa.Size
	a, err := d.write(ctx, dst, func(t *os.File) (objHeader, error) {
		err := writeDest(ctx, t, io.NewSectionReader(f, 0, total), total)
		return objHeader{ETag: sa.ETag, Size: sa.Size, Metadata: sa.Metadata}, err
	}, nil)
	return a, wrap("copy", src, err)
}

// write publishes a new object at key: fill writes the object file into a
// temporary file and returns its header; check, if not nil, is called with
// the current object's state under the root's lock, and vetoes the write by
// returning an error. The temporary file is removed on every failure.
func (d *Dir) write(ctx context.Context, key string, fill func(*os.File) (objHeader, error),
	check func(exists bool, etag string) error) (Attrs, error) {
	path := d.path(key)
	tmp, created, err := d.createTemp(filepath.Dir(path))
	if err != nil {
		return Attrs{}, err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h, err := fill(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return Attrs{}, err
	}
	if err := tmp.Close(); err != nil {
		return Attrs{}, err
	}

	unlock, err := d.lock(ctx)
	if err != nil {
		return Attrs{}, err
	}
	defer unlock()
	if check != nil {
		exists, etag, err := d.current(key)
		if err != nil {
			return Attrs{}, err
		}
		if err := check(exists, etag); err != nil {
			return Attrs{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Attrs{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
			return Attrs{}, fmt.Errorf("%s is a directory: %w", path, errConflict)
		}
		return Attrs{}, err
	}
	committed = true
	// From here on the new object is visible; an error only means it may
	// not survive a crash.
	if err := d.syncParents(filepath.Dir(path), created); err != nil {
		return Attrs{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Attrs{}, err
	}
	return Attrs{Key: key, Size: h.Size, ETag: h.ETag, ModTime: fi.ModTime(), Metadata: cloneMetadata(h.Metadata)}, nil
}

// current reports whether an object exists at key and its ETag.
func (d *Dir) current(key string) (exists bool, etag string, err error) {
	f, a, _, err := d.open(key)
	if errors.Is(err, ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	f.Close()
	return true, a.ETag, nil
}

// createTemp creates a temporary file (mode 0600) in dir, creating dir and
// its parents up to the root as needed; created reports whether it made any.
func (d *Dir) createTemp(dir string) (f *os.File, created bool, err error) {
	for try := 0; ; try++ {
		c, err := d.mkdirs(dir)
		created = created || c
		if err != nil {
			return nil, created, err
		}
		f, err = os.CreateTemp(dir, tempPattern)
		if err == nil {
			return f, created, nil
		}
		// A Delete may have pruned dir between mkdirs and CreateTemp: try
		// again, a bounded number of times.
		if !errors.Is(err, fs.ErrNotExist) || try == 10 {
			return nil, created, err
		}
	}
}

// mkdirs creates dir, which is under the root, and its missing parents.
func (d *Dir) mkdirs(dir string) (created bool, err error) {
	rel, err := filepath.Rel(d.root, dir)
	if err != nil || rel == "." {
		return false, err
	}
	p := d.root
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		p = filepath.Join(p, seg)
		err := os.Mkdir(p, dirMode)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, fs.ErrExist):
			if fi, serr := os.Stat(p); serr == nil && !fi.IsDir() {
				return created, fmt.Errorf("%s is an object: %w", p, errConflict)
			}
		case errors.Is(err, syscall.ENOTDIR):
			return created, fmt.Errorf("%s: %w", p, errConflict)
		default:
			return created, err
		}
	}
	return created, nil
}

// syncParents fsyncs dir, so that a rename in it is durable, and if
// created, every directory above it up to the root, so that new
// directories are too.
func (d *Dir) syncParents(dir string, created bool) error {
	for {
		if err := syncDir(dir); err != nil {
			return err
		}
		if !created || dir == d.root || len(dir) <= len(d.root) {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

// syncDir fsyncs a directory. Windows cannot, and needs not.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete implements Bucket.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := firstErr(checkDirKey(key), ctx.Err()); err != nil {
		return wrap("delete", key, err)
	}
	return wrap("delete", key, d.remove(ctx, key))
}

func (d *Dir) remove(ctx context.Context, key string) error {
	unlock, err := d.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	path := d.path(key)
	fi, err := os.Lstat(path)
	if isNotExist(err) || err == nil && fi.IsDir() {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return err
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil {
		return err
	}
	// Remove the directories this leaves empty, so that their names are
	// free for objects again. os.Remove refuses a non-empty directory,
	// including one holding another writer's temporary file.
	for dir != d.root && len(dir) > len(d.root) && os.Remove(dir) == nil {
		dir = filepath.Dir(dir)
	}
	return nil
}

// List implements Bucket.
func (d *Dir) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	if err := ctx.Err(); err != nil {
		return ListPage{}, wrap("list", opts.Prefix, err)
	}
	keys, err := d.keys(ctx, opts.Prefix)
	if err != nil {
		return ListPage{}, wrap("list", opts.Prefix, err)
	}
	page, next := pageKeys(keys, opts)
	out := ListPage{NextToken: next, Objects: make([]Attrs, 0, len(page))}
	for _, k := range page {
		f, a, _, err := d.open(k)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, errForeign):
			// Deleted since the walk, or not Dir's: not an object.
			continue
		case err != nil:
			return ListPage{}, wrap("list", opts.Prefix, err)
		}
		f.Close()
		a.Metadata = nil
		out.Objects = append(out.Objects, a)
	}
	return out, nil
}

// keys returns, sorted, the keys of the regular files under the root that
// start with prefix, leaving out Dir's own files.
func (d *Dir) keys(ctx context.Context, prefix string) ([]string, error) {
	start := d.root
	// Walk only the deepest directory the prefix names, when it is one a
	// key could name (so that it cannot leave the root).
	if i := strings.LastIndex(prefix, "/"); i > 0 && checkDirKey(prefix[:i]) == nil {
		start = d.path(prefix[:i])
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == start && isNotExist(err) {
				return fs.SkipAll
			}
			if isNotExist(err) {
				return nil // removed during the walk
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == d.root {
			return nil
		}
		if isReserved(e.Name()) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && strings.HasPrefix(key, prefix) && ValidateKey(key) == nil {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	return keys, nil
}
