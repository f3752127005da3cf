//go:build cgo

package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

// Restore downloads the snapshot at key and copies it into dst with the
// online backup API. It reports false, and leaves dst untouched, when no
// object exists at key, once a List of the key shows that the bucket
// exists and answers (one more request, made only then): a missing
// bucket, or credentials a service rejects with a 404, are errors.
//
// The snapshot is verified before dst is touched: its bytes against the
// SHA-256 in the object's metadata (when present), its header, and PRAGMA
// integrity_check. A snapshot that fails any of these returns an error
// matching ErrCorrupt that names the key and the reason, and dst keeps
// its previous contents.
//
// Restore is RestoreConn with default options; use RestoreConn for the
// ETag to pass to the next Flush.
func Restore(ctx context.Context, dst *sqlite3.SQLiteConn, b bucket.Bucket, key string) (bool, error) {
	info, err := RestoreConn(ctx, dst, b, key, RestoreOptions{})
	return info.Found, err
}

// RestoreConn is Restore with options, returning what it restored.
func RestoreConn(ctx context.Context, dst *sqlite3.SQLiteConn, b bucket.Bucket, key string, opts RestoreOptions) (Info, error) {
	if err := validateRestoreKey(key); err != nil {
		return Info{}, fail("restore", key, err)
	}
	tmp, err := tempFile(opts.TempDir, restPattern)
	if err != nil {
		return Info{}, fail("restore", key, fmt.Errorf("create temp file: %w", err))
	}
	defer removeDB(tmp.Name())
	defer tmp.Close()
	info, src, err := fetch(ctx, b, key, tmp, opts, false)
	if err != nil || !info.Found {
		return info, err
	}
	defer src.Close()
	if err := backup(ctx, dst, src); err != nil {
		if ctx.Err() != nil {
			return Info{}, fail("restore", key, err)
		}
		return Info{}, corrupt("restore", key, "failed to restore: %w", err)
	}
	return info, nil
}

// RestoreFile downloads the snapshot at key into a temp file beside path,
// verifies it as Restore does, and atomically renames it to path, after
// removing any stale -wal, -shm or -journal file there. Nothing at path
// changes unless the whole snapshot is downloaded and sound. It reports
// Info.Found false, and leaves path alone, when no object exists at key.
//
// The caller must make sure no connection has path open, and that nothing
// at path is worth keeping: RestoreFile replaces it.
func RestoreFile(ctx context.Context, b bucket.Bucket, key, path string, opts RestoreOptions) (Info, error) {
	if err := validateRestoreKey(key); err != nil {
		return Info{}, fail("restore", key, err)
	}
	path = absPath(path)
	dir := filepath.Dir(path)
	tmp, err := tempFile(dir, restPattern)
	if err != nil {
		return Info{}, fail("restore", key, fmt.Errorf("create temp file: %w", err))
	}
	published := false
	defer func() {
		tmp.Close()
		if !published {
			removeDB(tmp.Name())
		}
	}()
	// fetch fsyncs the file (while it checks it), so publishing is a
	// rename and a sync of the directory.
	info, src, err := fetch(ctx, b, key, tmp, opts, true)
	if err != nil || !info.Found {
		return info, err
	}
	if err := src.Close(); err != nil {
		return Info{}, fail("restore", key, err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(path + side); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Info{}, fail("restore", key, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Info{}, fail("restore", key, err)
	}
	published = true
	os.Remove(tmp.Name() + "-journal")
	if err := fsutil.SyncDir(dir); err != nil {
		return Info{}, fail("restore", key, err)
	}
	return info, nil
}

// fetch downloads key into tmp and verifies it, and with sync, fsyncs tmp
// (while the integrity check runs). On success it returns an open
// read-only connection to tmp; on a missing object, Found false.
func fetch(ctx context.Context, b bucket.Bucket, key string, tmp *os.File, opts RestoreOptions, sync bool) (Info, *sqlite3.SQLiteConn, error) {
	once := fetchOnce
	if !opts.At.IsZero() || opts.Seq > 0 {
		once = fetchPointOnce // the point RestoreOptions.At or Seq name
	}
	for attempt := 1; ; attempt++ {
		info, src, err := once(ctx, b, key, tmp, opts, sync)
		if !errors.Is(err, errLogMoved) || attempt == 3 {
			if errors.Is(err, errLogMoved) {
				err = fail("restore", key, fmt.Errorf("%w, %d times in a row; try again", errLogMoved, attempt))
			}
			return info, src, err
		}
		if err := tmp.Truncate(0); err != nil {
			return Info{}, nil, fail("restore", key, err)
		}
	}
}

// fetchOnce is one attempt of fetch.
func fetchOnce(ctx context.Context, b bucket.Bucket, key string, tmp *os.File, opts RestoreOptions, sync bool) (Info, *sqlite3.SQLiteConn, error) {
	c := opts.Check
	// The download is hashed as it arrives: no second pass over the file.
	hw := newHashingWriter(tmp)
	defer hw.stop()
	attrs, err := b.Download(ctx, key, hw)
	if errors.Is(err, bucket.ErrNotFound) {
		// A 404 also answers a GET in a bucket that does not exist, and,
		// on some services, one signed with an unknown access key. Calling
		// that "no snapshot yet" would start an empty database: make sure
		// the bucket itself answers before saying so.
		if _, lerr := b.List(ctx, bucket.ListOptions{Prefix: key, PageSize: 1}); lerr != nil {
			return Info{}, nil, fail("restore", key, fmt.Errorf("no snapshot at the key, and the bucket cannot be listed: %w", lerr))
		}
		return Info{}, nil, nil
	}
	if err != nil {
		return Info{}, nil, fail("restore", key, err)
	}
	hash, size, err := hw.Sum()
	if err != nil {
		return Info{}, nil, fail("restore", key, fmt.Errorf("hash download: %w", err))
	}
	if size != attrs.Size {
		return Info{}, nil, corrupt("restore", key, "downloaded %d bytes of a %d-byte object", size, attrs.Size)
	}
	if want := attrs.Metadata[MetaSHA256]; want != "" && want != hash {
		return Info{}, nil, corrupt("restore", key, "sha256 mismatch: object metadata records %s, downloaded bytes hash to %s", want, hash)
	}
	if err := checkHeader(tmp, size); err != nil {
		return Info{}, nil, corrupt("restore", key, "not a valid SQLite file: %w", err)
	}
	info := Info{Found: true, ETag: attrs.ETag, SnapshotHash: hash, Size: size, BaseKey: key}
	seq, hasLog, err := baseSeq(attrs)
	if err != nil {
		return Info{}, nil, corrupt("restore", key, "%w", err)
	}
	info.Seq, info.BaseSeq, info.Log = seq, seq, hasLog
	// The log's image check, or the image a writer asked for, is one pass
	// over the file: it runs beside the integrity check.
	var lr *logRestore
	if hasLog {
		lr, err = applyLog(ctx, b, key, tmp, size, attrs, seq)
		if err != nil {
			if errors.Is(err, errLogMoved) || errors.Is(err, ErrSnapshot) {
				return Info{}, nil, err
			}
			return Info{}, nil, fail("restore", key, err)
		}
		info.Seq, info.Deltas, info.DeltaBytes = lr.seq, lr.deltas, lr.deltaBytes
		info.DeltaTime = lr.time
		if lr.deltas > 0 {
			if err := checkHeader(tmp, lr.size); err != nil {
				return Info{}, nil, corrupt("restore", key, "the base and its log do not make a valid SQLite file: %w", err)
			}
		}
	}
	if err := setRollbackHeader(tmp); err != nil {
		return Info{}, nil, fail("restore", key, err)
	}
	type imageResult struct {
		im  *Image
		err error
	}
	imaged := make(chan imageResult, 1)
	switch {
	case lr != nil && (lr.deltas > 0 || opts.Image):
		go func() {
			im, err := lr.verifyImage(ctx, b, key, tmp, attrs)
			imaged <- imageResult{im, err}
		}()
	case opts.Image:
		go func() {
			ps, err := pageSizeOf(tmp)
			if err != nil {
				imaged <- imageResult{nil, err}
				return
			}
			im, err := ImageFromFile(tmp, size, ps)
			imaged <- imageResult{im, err}
		}()
	default:
		imaged <- imageResult{}
	}
	// The fsync writes the file back to disk while the integrity check,
	// which only reads it, runs on the other core.
	synced := make(chan error, 1)
	if sync {
		go func() { synced <- tmp.Sync() }()
	} else {
		synced <- nil
	}
	// wait collects the background work before an error return.
	wait := func() { <-synced; <-imaged }
	src, err := openConn(tmp.Name(), url.Values{"mode": {"ro"}})
	if err != nil {
		wait()
		return Info{}, nil, corrupt("restore", key, "not a valid SQLite file: %w", err)
	}
	if err := check(ctx, src, c); err != nil {
		src.Close()
		wait()
		if ctx.Err() != nil {
			return Info{}, nil, fail("restore", key, ctx.Err())
		}
		return Info{}, nil, corrupt("restore", key, "failed %s integrity check: %w", c, err)
	}
	if err := <-synced; err != nil {
		src.Close()
		<-imaged
		return Info{}, nil, fail("restore", key, err)
	}
	ir := <-imaged
	if ir.err != nil {
		src.Close()
		if errors.Is(ir.err, errLogMoved) || errors.Is(ir.err, ErrSnapshot) {
			return Info{}, nil, ir.err
		}
		return Info{}, nil, fail("restore", key, ir.err)
	}
	if opts.Image {
		info.Image = ir.im
	}
	return info, src, nil
}

var sqliteMagic = []byte("SQLite format 3\x00")

// checkHeader verifies the parts of the database header that SQLite itself
// tolerates but that mean a snapshot was cut short or is not SQLite at all:
// the magic string, a valid page size, a whole number of pages, and, where
// the header's page count is valid, the file length it implies
// (https://sqlite.org/fileformat2.html#the_database_header).
func checkHeader(f *os.File, size int64) error {
	if size == 0 {
		return errors.New("empty object")
	}
	if size < 100 {
		return fmt.Errorf("%d bytes is shorter than a SQLite header", size)
	}
	var h [100]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return err
	}
	if !bytes.Equal(h[:16], sqliteMagic) {
		return errors.New("no SQLite header")
	}
	pageSize := int64(headerPageSize(h[16:18]))
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("invalid page size %d", pageSize)
	}
	if size%pageSize != 0 {
		return fmt.Errorf("truncated: %d bytes is not a whole number of %d-byte pages", size, pageSize)
	}
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	changeCounter := binary.BigEndian.Uint32(h[24:28])
	validFor := binary.BigEndian.Uint32(h[92:96])
	if pages != 0 && changeCounter == validFor && pages*pageSize != size {
		return fmt.Errorf("truncated: header says %d pages (%d bytes), object has %d bytes", pages, pages*pageSize, size)
	}
	return nil
}
