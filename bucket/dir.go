package bucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

// Dir is a Bucket kept in a directory of the local file system: the object
// at key "a/b" is the file ROOT/a/b, and that file holds exactly the
// object's content. A snapshot in a Dir is a plain SQLite database that
// sqlite3 opens where it lies, and a file copied under the root by hand is
// an object (without metadata). The object's ETag and metadata are kept
// beside it, in a hidden sidecar, ROOT/a/.bucketsqlite.b.meta, which
// describes one version of the object file and is ignored once that file
// is replaced or edited by other means; see dirobj.go for the format and
// why reads never pair new content with old metadata.
//
// Writes are atomic and durable: Upload and Copy write the content to a
// temporary file in the object's directory and fsync it, take the root's
// lock, check the write's conditions, rename a new sidecar and then the
// content into place, and fsync the directory. The lock is an flock(2) on
// ROOT/.bucketsqlite.lock, so conditional writes exclude each other across
// goroutines, Dir values and processes sharing the root (on systems
// without flock, only within one process). Reads take the lock only to
// settle a read that raced several writes of its key. A failed or
// cancelled write removes its temporary files; only a crash can leave one
// behind, and List ignores it.
//
// Files are created with mode 0600 and directories with 0700 (less the
// umask): a bucket holds database snapshots, which are nobody else's
// business. Directories are created as needed and removed when a Delete or
// a failed write leaves them empty.
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
	f, a, err := d.open(ctx, key)
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
	f, a, err := d.open(ctx, key)
	if err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	defer f.Close()
	if err := writeDest(ctx, dst, io.NewSectionReader(f, 0, a.Size), a.Size); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	return a, nil
}

// optimisticReads is how many times a reader tries without the root's
// lock before it takes it: a retry means at least one write or delete of
// the key completed while it read, so retries are rare and short.
const optimisticReads = 4

// open opens the object file at key and returns it with the object's
// attributes. The open file keeps this version readable even if it is
// replaced, and the attributes describe it.
func (d *Dir) open(ctx context.Context, key string) (*os.File, Attrs, error) {
	path := d.path(key)
	for try := 0; ; try++ {
		locked := try >= optimisticReads
		unlock := func() {}
		if locked {
			var err error
			if unlock, err = d.lock(ctx); err != nil {
				return nil, Attrs{}, err
			}
		}
		f, fi, v, err := openVersion(path, !locked)
		unlock()
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return nil, Attrs{}, err
		}
		a := Attrs{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
		if v != nil {
			a.ETag, a.Metadata = v.ETag, cloneMetadata(v.Metadata)
			return f, a, nil
		}
		if a.ETag, err = contentETag(ctx, f, fi.Size()); err != nil {
			f.Close()
			return nil, Attrs{}, err
		}
		a.Metadata = cloneMetadata(nil)
		return f, a, nil
	}
}

// openVersion opens the object file at path and returns it with its
// FileInfo and the sidecar entry that describes it, or a nil entry if none
// does. With recheck, a reader not holding the root's lock makes sure the
// path still names the file it opened before it concludes that no entry
// describes it; if not, it returns errChanged.
func openVersion(path string, recheck bool) (*os.File, fs.FileInfo, *objVersion, error) {
	f, err := os.Open(path)
	if err != nil {
		if isNotExist(err) {
			err = ErrNotFound
		}
		return nil, nil, nil, err
	}
	fail := func(err error) (*os.File, fs.FileInfo, *objVersion, error) {
		f.Close()
		return nil, nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(ErrNotFound)
	}
	id, err := fileID(f, fi)
	if err != nil {
		return fail(err)
	}
	sc, err := readSidecar(sidecarPath(path))
	if err != nil {
		return fail(err)
	}
	if v := sc.match(fi, id); v != nil {
		return f, fi, v, nil
	}
	if recheck {
		now, err := os.Stat(path)
		switch {
		case isNotExist(err), err == nil && !os.SameFile(fi, now):
			return fail(errChanged)
		case err != nil:
			return fail(err)
		}
	}
	return f, fi, nil, nil
}

// contentETag returns the ETag of an object file no sidecar entry
// describes: that of its content without metadata.
func contentETag(ctx context.Context, f *os.File, size int64) (string, error) {
	sum := newContentHash()
	err := readSource(ctx, f, size, func(p []byte) error {
		sum.Write(p)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return localETag(sum.Sum(nil), nil), nil
}

// isNotExist reports whether err means a path does not exist, including
// because one of its parents is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Upload implements Bucket.
func (d *Dir) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error) {
	err := firstErr(checkDirKey(key), ValidateMetadata(opts.Metadata), checkMetadataLen(opts.Metadata), ctx.Err())
	if err != nil {
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
	a, err := d.write(ctx, key, size, func(f *os.File) (string, map[string]string, error) {
		sum := newContentHash()
		err := readSource(ctx, src, size, func(p []byte) error {
			sum.Write(p)
			_, err := f.Write(p)
			return err
		})
		return localETag(sum.Sum(nil), md), md, err
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
	f, sa, err := d.open(ctx, src)
	if err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	defer f.Close()
	if err := checkCopy(sa.ETag, opts); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	var check func(exists bool, etag string) error
	if opts.IfMatch != "" || opts.IfNoneMatch {
		check = func(exists bool, etag string) error { return checkCopyDest(exists, etag, opts) }
	}
	// Same content and metadata, so the same ETag.
	a, err := d.write(ctx, dst, sa.Size, func(t *os.File) (string, map[string]string, error) {
		err := writeDest(ctx, t, io.NewSectionReader(f, 0, sa.Size), sa.Size)
		return sa.ETag, sa.Metadata, err
	}, check)
	return a, wrap("copy", src, err)
}

// write publishes a new object of size bytes at key: fill writes its
// content into a temporary file and returns its ETag and metadata; check,
// if not nil, is called with the current object's state under the root's
// lock, and vetoes the write by returning an error. Temporary files are
// removed on every failure. See dirobj.go for why the steps come in this
// order.
func (d *Dir) write(ctx context.Context, key string, size int64,
	fill func(*os.File) (etag string, md map[string]string, err error),
	check func(exists bool, etag string) error) (Attrs, error) {
	path := d.path(key)
	dir := filepath.Dir(path)
	tmp, created, err := d.createTemp(path)
	if err != nil {
		if created {
			d.prune(dir)
		}
		return Attrs{}, err
	}
	committed := false
	defer func() {
		tmp.Discard()
		if !committed && created {
			d.prune(dir)
		}
	}()
	etag, md, err := fill(tmp.File)
	if err == nil {
		err = tmp.Sync()
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = tmp.Stat()
	}
	var id uint64
	if err == nil {
		id, err = fileID(tmp.File, fi)
	}
	if err == nil && fi.Size() != size {
		err = fmt.Errorf("%s: wrote %d bytes, not %d", tmp.Name(), fi.Size(), size)
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
	// A rename keeps the inode and the modification time: this describes
	// the object file once it is in place.
	v := &objVersion{ETag: etag, Size: size, Ino: id, MtimeNS: fi.ModTime().UnixNano(), Metadata: md}

	unlock, err := d.lock(ctx)
	if err != nil {
		return Attrs{}, err
	}
	defer unlock()
	exists, prev, err := d.current(ctx, path, check)
	if err != nil {
		return Attrs{}, err
	}
	side := sidecarPath(path)
	if err := writeSidecar(ctx, side, sidecar{Current: v, Previous: prev}); err != nil {
		return Attrs{}, err
	}
	// The new sidecar is in place, still describing the old file through
	// prev. If the content does not follow it, a sidecar with no object
	// beside it is litter: remove it.
	undo := func() {
		if !exists {
			os.Remove(side)
		}
	}
	if err := fsutil.SyncDir(dir); err != nil {
		undo()
		return Attrs{}, err
	}
	if err := tmp.Rename(); err != nil {
		undo()
		if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
			return Attrs{}, fmt.Errorf("%s is a directory: %w", path, errConflict)
		}
		return Attrs{}, err
	}
	committed = true
	// From here on the new object is visible; an error only means it may
	// not survive a crash.
	if err := d.syncParents(dir, created); err != nil {
		return Attrs{}, err
	}
	return Attrs{Key: key, Size: size, ETag: etag, ModTime: fi.ModTime(), Metadata: cloneMetadata(md)}, nil
}

// current looks, under the root's lock, at the object file a write is
// about to replace: it reports whether there is one and the sidecar entry
// that describes it, if any, and calls check, if not nil, with its ETag.
// A directory at path is a conflict.
func (d *Dir) current(ctx context.Context, path string, check func(exists bool, etag string) error) (exists bool, v *objVersion, err error) {
	f, fi, v, err := openVersion(path, false)
	switch {
	case errors.Is(err, ErrNotFound):
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			return false, nil, fmt.Errorf("%s is a directory: %w", path, errConflict)
		}
		if check != nil {
			err = check(false, "")
		} else {
			err = nil
		}
		return false, nil, err
	case err != nil:
		return false, nil, err
	}
	defer f.Close()
	if check == nil {
		return true, v, nil
	}
	var etag string
	if v != nil {
		etag = v.ETag
	} else if etag, err = contentETag(ctx, f, fi.Size()); err != nil {
		return false, nil, err
	}
	return true, v, check(true, etag)
}

// writeSidecar writes s to a temporary file beside path, fsyncs it and,
// unless ctx is done, renames it to path; the caller fsyncs the directory.
// The temporary file is removed on every failure.
func writeSidecar(ctx context.Context, path string, s sidecar) error {
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := fsutil.CreateTemp(path, tempPattern)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(js); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.Rename()
}

// createTemp creates a temporary file (mode 0600) beside path, creating
// its directory and their parents up to the root as needed; created
// reports whether it made any.
func (d *Dir) createTemp(path string) (f *fsutil.TempFile, created bool, err error) {
	dir := filepath.Dir(path)
	for try := 0; ; try++ {
		c, err := d.mkdirs(dir)
		created = created || c
		if err != nil {
			return nil, created, err
		}
		f, err = fsutil.CreateTemp(path, tempPattern)
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
		if err := fsutil.SyncDir(dir); err != nil {
			return err
		}
		if !created || dir == d.root || len(dir) <= len(d.root) {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

// Delete implements Bucket.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := firstErr(checkDirKey(key), ctx.Err()); err != nil {
		return wrap("delete", key, err)
	}
	return wrap("delete", key, d.remove(ctx, key))
}

// remove deletes the object file at key, then its sidecar: in this order,
// a reader that opened the file before it went either finds the sidecar
// that describes it or, finding none, sees that the file is gone and
// reports no object (see dirobj.go). A sidecar without its object, as a
// crash can leave, goes too.
func (d *Dir) remove(ctx context.Context, key string) error {
	unlock, err := d.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	path := d.path(key)
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err != nil && !isNotExist(err):
		return err
	}
	removed := false
	if err == nil {
		if err := os.Remove(path); err != nil && !isNotExist(err) {
			return err
		}
		removed = true
	}
	switch err := os.Remove(sidecarPath(path)); {
	case err == nil:
		removed = true
	case !isNotExist(err):
		return err
	}
	if !removed {
		return nil
	}
	dir := filepath.Dir(path)
	if err := fsutil.SyncDir(dir); err != nil {
		return err
	}
	d.prune(dir)
	return nil
}

// prune removes dir, which is under the root, if it is empty, and so on
// up to the root, so that the names of directories no object needs are
// free for objects again. os.Remove refuses a non-empty directory,
// including one holding another writer's temporary file, and a writer
// whose directory goes between its creation and the temporary file's
// makes it again (see createTemp).
func (d *Dir) prune(dir string) {
	for dir != d.root && len(dir) > len(d.root) {
		if err := os.Remove(dir); err != nil && !isNotExist(err) {
			return
		}
		dir = filepath.Dir(dir)
	}
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
		f, a, err := d.open(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
			// Deleted since the walk.
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
