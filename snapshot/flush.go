//go:build cgo

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
)

// File is a snapshot taken into a private temp file: a plain SQLite
// database in rollback-journal mode. Remove it when done.
type File struct {
	f    *os.File
	path string
	// Hash is the SHA-256 (hex) of the file's bytes.
	Hash string
	// Size is the file's length in bytes.
	Size int64
	// DataVersion is the source connection's PRAGMA data_version in the
	// read transaction the snapshot was copied in: as long as DataVersion
	// on that connection still returns it, nothing was committed since,
	// and a new snapshot would hold the same.
	DataVersion int64
}

// Path is the temp file's path.
func (f *File) Path() string { return f.path }

// Remove deletes the temp file. It is safe to call twice.
//
// The name is gone when Remove returns; the file itself is closed, and
// its space and cached pages released, in the background: for a large
// snapshot that takes the kernel a while, and nobody needs to wait for it.
func (f *File) Remove() error {
	if f == nil || f.f == nil {
		return nil
	}
	err := os.Remove(f.path)
	if err == nil {
		go f.f.Close()
	} else {
		// Some systems (Windows) remove no open file.
		f.f.Close()
		err = os.Remove(f.path)
	}
	os.Remove(f.path + "-journal")
	f.f = nil
	return err
}

// hashedFile is what Publish uploads: the snapshot's bytes, and the
// SHA-256 they hashed to when it was taken (bucket.SHA256Source), so that
// the upload does not read the whole file once more to hash it, and the
// service checks what it receives against the hash in the metadata.
type hashedFile struct{ f *File }

var _ bucket.SHA256Source = hashedFile{}

func (h hashedFile) ReadAt(p []byte, off int64) (int, error) { return h.f.f.ReadAt(p, off) }
func (h hashedFile) SHA256() string                          { return h.f.Hash }

// Take makes a consistent snapshot of src's main database in a private
// (0600) temp file in dir (os.TempDir() when empty), with SQLite's online
// backup API, and hashes it. In WAL mode the backup holds only a read
// transaction, so writers on other connections keep committing while it
// runs.
//
// The snapshot's header is set to rollback-journal mode whatever src's
// journal mode is, so that the uploaded file opens on its own, with no
// -wal file, in the sqlite3 shell or any other SQLite. Two snapshots of an
// unchanged database are byte-identical, which is what lets Flush skip
// uploads by hash. File.DataVersion tells, without taking another, whether
// a new snapshot could differ.
//
// The copy must pass PRAGMA quick_check
// (https://sqlite.org/pragma.html#pragma_quick_check): a damaged database
// returns an error matching ErrCorrupt, and no snapshot.
//
// Unless src is inside a transaction of its own, Take opens and ends a
// read transaction on it (BEGIN, ROLLBACK).
func Take(ctx context.Context, src *sqlite3.SQLiteConn, dir string) (_ *File, err error) {
	tmp, err := tempFile(dir, takePattern)
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	f := &File{f: tmp, path: tmp.Name()}
	defer func() {
		if err != nil {
			f.Remove()
		}
	}()
	// The destination is private and disposable: no journal, no fsync;
	// and each page is written once, so a few pages of cache will do
	// (the backup runs about 5% faster than with the default 2 MB).
	dst, err := openConn(f.path, url.Values{"_journal_mode": {"OFF"}, "_synchronous": {"OFF"}, "_cache_size": {"16"}})
	if err != nil {
		return nil, fmt.Errorf("open temp database: %w", err)
	}
	f.DataVersion, err = backupVersion(ctx, dst, src)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close temp database: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	if err := setRollbackHeader(tmp); err != nil {
		return nil, fmt.Errorf("set snapshot header: %w", err)
	}
	// The check and the hash both read the copy, from the page cache: on
	// two cores, side by side.
	checked := make(chan error, 1)
	go func() { checked <- checkTaken(ctx, f.path) }()
	f.Hash, f.Size, err = hashFile(tmp)
	if cerr := <-checked; cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("hash snapshot: %w", err)
	}
	return f, nil
}

// checkTaken runs PRAGMA quick_check on the snapshot just taken into path:
// a database damaged in place (a rolled-back transaction under
// journal_mode=OFF, a disk error) is refused with ErrCorrupt rather than
// uploaded over a sound snapshot. It reads the copy once more, from the
// page cache (see BenchmarkTake).
func checkTaken(ctx context.Context, path string) error {
	conn, err := openConn(path, url.Values{"mode": {"ro"}})
	if err != nil {
		return fmt.Errorf("%w: the snapshot does not open: %v", ErrCorrupt, err)
	}
	defer conn.Close()
	if err := check(ctx, conn, CheckQuick); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: the database is damaged, not taking a snapshot of it: %v", ErrCorrupt, err)
	}
	return nil
}

// Flush backs up src into a temp file, hashes it and, unless the hash
// equals opts.LastHash, uploads it to key with the hash in the object's
// metadata (MetaSHA256).
//
// The upload is a conditional write: it succeeds only if the object at key
// is still opts.IfMatch (or, when IfMatch is empty, only if there is no
// object yet), so a flush never overwrites a snapshot written by someone
// else, nor, as a first flush, one it never restored. A failed condition
// returns an error matching ErrConflict and changes nothing at key. With
// opts.KeepPrevious the object being replaced is first copied to
// key+".prev", on the server, conditional on the same ETag.
//
// After the upload, Flush asks the bucket (one Stat) whether the object at
// key now has the snapshot's size and SHA-256, and returns an error if
// not: an upload that reports success is not trusted on its word.
//
// Flush costs no request when the hash matches; otherwise one PUT (or a
// multipart upload) and one Stat, plus, with KeepPrevious and a previous
// object, one server-side copy.
func Flush(ctx context.Context, src *sqlite3.SQLiteConn, b bucket.Bucket, key string, opts FlushOptions) (Result, error) {
	if err := ValidateKey(key); err != nil {
		return Result{}, fail("flush", key, err)
	}
	f, err := Take(ctx, src, opts.TempDir)
	if err != nil {
		return Result{}, fail("flush", key, err)
	}
	defer f.Remove()
	return Publish(ctx, f, b, key, opts)
}

// Publish uploads a snapshot taken with Take, with Flush's rules: skip on
// opts.LastHash, conditional write on opts.IfMatch (resolving failed
// conditions caused by this writer's own earlier uploads, see
// FlushOptions.Unconfirmed), KEY.prev on opts.KeepPrevious, confirmation
// with a Stat. It does not remove f.
func Publish(ctx context.Context, f *File, b bucket.Bucket, key string, opts FlushOptions) (Result, error) {
	if err := ValidateKey(key); err != nil {
		return Result{}, fail("flush", key, err)
	}
	res := Result{SnapshotHash: f.Hash, Size: f.Size, ETag: opts.IfMatch, PrevETag: opts.PrevETag}
	if opts.LastHash != "" && opts.LastHash == f.Hash {
		return res, nil
	}
	res, err := publish(ctx, f, b, key, opts, res)
	if !errors.Is(err, ErrConflict) || opts.Force {
		return res, err
	}
	// The object at the key is not the one the caller last saw. It may
	// still be this writer's own: an upload of this very snapshot, or of
	// an unconfirmed earlier one, that reached the bucket although the
	// call that made it failed (or an SDK retry of a request that had
	// succeeded then failed its condition).
	cur, serr := statObject(ctx, b, key)
	switch {
	case errors.Is(serr, bucket.ErrNotFound):
		return res, err
	case serr != nil:
		// Not a conflict yet: the caller should try again.
		return res, fail("flush", key, fmt.Errorf("%v; telling it from an earlier upload of this writer's failed: %w", err, serr))
	}
	sha := cur.Metadata[MetaSHA256]
	switch {
	case sha == f.Hash && cur.Size == f.Size:
		// This snapshot is there already, whole.
		res.ETag = cur.ETag
		return res, nil
	case sha != "" && (sha == f.Hash || slices.Contains(opts.Unconfirmed, sha)):
		// An earlier upload of ours (possibly torn by a faulty backend):
		// replace it.
		opts.IfMatch = cur.ETag
		opts.PrevETag = res.PrevETag
		return publish(ctx, f, b, key, opts, res)
	}
	return res, err
}

// publish is one conditional attempt of Publish.
func publish(ctx context.Context, f *File, b bucket.Bucket, key string, opts FlushOptions, res Result) (Result, error) {
	write := bucket.WriteOptions{Metadata: map[string]string{MetaSHA256: f.Hash, MetaKeySHA256: keyHash(key)}}
	if opts.Log {
		write.Metadata[MetaSeq] = strconv.FormatUint(opts.Seq, 10)
		write.Metadata[MetaTime] = formatTime(opts.Time)
		write.Metadata[MetaWriter] = thisWriter()
	}
	switch {
	case opts.Force:
	case opts.IfMatch != "":
		write.IfMatch = opts.IfMatch
	default:
		write.IfNoneMatch = true
	}
	if opts.KeepPrevious {
		etag, kept, err := keepPrevious(ctx, b, key, opts)
		if err != nil {
			return res, err
		}
		res.KeptPrevious, res.PrevETag = kept, etag
	}
	attrs, err := b.Upload(ctx, key, hashedFile{f}, f.Size, write)
	if err != nil {
		if errors.Is(err, bucket.ErrPrecondition) {
			return res, &Error{Op: "flush", Key: key, Kind: ErrConflict, Err: err}
		}
		return res, fail("flush", key, err)
	}
	etag, err := confirm(ctx, b, key, f, attrs)
	if err != nil {
		return res, fail("flush", key, err)
	}
	res.Uploaded = true
	res.BytesWritten = f.Size
	res.ETag = etag
	return res, nil
}

// confirm asks the bucket, with one Stat, whether the object at key is the
// snapshot just uploaded: its size and the SHA-256 recorded in its
// metadata. An upload's own success is not proof: a faulty backend, proxy
// or gateway can acknowledge a write it did not make, or store part of
// it. It returns the ETag of the object the bucket holds.
func confirm(ctx context.Context, b bucket.Bucket, key string, f *File, up bucket.Attrs) (string, error) {
	got, err := b.Stat(ctx, key)
	if err != nil {
		return "", fmt.Errorf("upload not confirmed: %w", err)
	}
	if got.Size != f.Size || got.Metadata[MetaSHA256] != f.Hash {
		return "", fmt.Errorf("upload not confirmed: the bucket reported success (ETag %s), but the object at the key "+
			"has %d bytes and sha256 %q (ETag %s), not the %d bytes with sha256 %s just uploaded",
			up.ETag, got.Size, got.Metadata[MetaSHA256], got.ETag, f.Size, f.Hash)
	}
	return got.ETag, nil
}

// errNoETag is a Stat that answered with no ETag: no store holds an
// object without one, so the answer says nothing (a gateway that lied, or
// a truncated response).
var errNoETag = errors.New("the bucket's answer has no ETag")

// statObject is b.Stat, with an answer that has no ETag taken for the
// failure it is rather than for an object without metadata: a decision
// that an object is another writer's, or a foreign one, rests on what a
// real answer holds.
func statObject(ctx context.Context, b bucket.Bucket, key string) (bucket.Attrs, error) {
	a, err := b.Stat(ctx, key)
	if err == nil && a.ETag == "" {
		return a, fmt.Errorf("stat %q: %w", key, errNoETag)
	}
	return a, err
}
