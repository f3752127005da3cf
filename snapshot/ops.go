//go:build cgo

package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Verify downloads and checks everything a restore with opts would use
// (the base's SHA-256 and header, each delta's trailer, sequence and
// image checksums, the integrity check opts.Check) into a temp file in
// opts.TempDir, which it removes. It reports Info.Found false when there
// is no database at key. A damaged object is an error matching ErrCorrupt
// that names it.
func Verify(ctx context.Context, b bucket.Bucket, key string, opts RestoreOptions) (Info, error) {
	if err := validateRestoreKey(key); err != nil {
		return Info{}, fail("verify", key, err)
	}
	tmp, err := tempFile(opts.TempDir, restPattern)
	if err != nil {
		return Info{}, fail("verify", key, fmt.Errorf("create temp file: %w", err))
	}
	defer removeDB(tmp.Name())
	defer tmp.Close()
	info, src, err := fetch(ctx, b, key, tmp, opts, false)
	if err != nil || !info.Found {
		return info, err
	}
	return info, src.Close()
}

// CompactOptions tune Compact.
type CompactOptions struct {
	// KeepPrevious copies the base being replaced to KEY.prev.
	KeepPrevious bool
	// Retention, when above 0, archives the base being replaced
	// (ArchiveKey) and prunes with this retention; 0 deletes what a
	// writer without retention deletes.
	Retention time.Duration
	// Check is the integrity check of the restored state.
	Check Check
	// TempDir is where the database is rebuilt; empty means os.TempDir().
	TempDir string
}

// CompactResult is what Compact did.
type CompactResult struct {
	// Compacted is false when the base had no delta after it: nothing was
	// written.
	Compacted bool
	// OldSeq and Seq are the sequences the old and the new base include.
	OldSeq, Seq uint64
	// ETag is the new base's.
	ETag string
	// Size is the new base's size in bytes.
	Size int64
	// Archived is the key the old base was archived at, if it was.
	Archived string
	// Pruned is what was deleted afterwards.
	Pruned PruneResult
}

// Compact does on demand what a writer in sync=log does on its own: it
// rebuilds the database from the base and its log, verified as a restore
// verifies it, and uploads it as the new base, recording the last
// sequence and that delta's flush time, conditionally on the old base's
// ETag. Then it prunes as the writer does.
//
// It is safe while a writer runs, on a bucket that enforces conditional
// writes: the writer's later deltas still chain (the new base's image is
// the image after the last delta), and the writer's own next compaction
// fails its condition (ErrConflict, logged; the writer goes on with
// deltas). If that writer compacts first, Compact's upload fails with
// ErrConflict and changes nothing. Callers should check the bucket with
// ProbeConditions first: without enforcement a compaction racing the
// writer's could replace a newer base.
func Compact(ctx context.Context, b bucket.Bucket, key string, opts CompactOptions) (CompactResult, error) {
	dir, err := os.MkdirTemp(opts.TempDir, "bucketsqlite-compact-")
	if err != nil {
		return CompactResult{}, fail("compact", key, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "db")
	info, err := RestoreFile(ctx, b, key, path, RestoreOptions{Check: opts.Check})
	switch {
	case err != nil:
		return CompactResult{}, err
	case !info.Found:
		return CompactResult{}, fail("compact", key, fmt.Errorf("no database: %w", bucket.ErrNotFound))
	case !info.Log:
		return CompactResult{}, fail("compact", key, errors.New("the base has no delta log (a full-sync snapshot): nothing to compact"))
	}
	res := CompactResult{OldSeq: info.BaseSeq, Seq: info.Seq, ETag: info.ETag, Size: info.Size}
	if info.Deltas == 0 {
		return res, nil
	}
	e := downloadDelta(ctx, b, key, info.Seq)
	if e.err != nil || e.missing {
		return res, fail("compact", key, firstErr(e.err, errLogMoved))
	}
	at, _, err := deltaHeaderInfo(e.data)
	if err != nil {
		return res, corrupt("compact", LogKey(key, info.Seq), "%w", err)
	}
	f, err := openFile(path)
	if err != nil {
		return res, fail("compact", key, err)
	}
	defer f.Remove()
	if opts.Retention > 0 {
		if res.Archived, err = Archive(ctx, b, key, info.ETag, info.BaseSeq); err != nil {
			return res, err
		}
	}
	pub, err := Publish(ctx, f, b, key, FlushOptions{KeepPrevious: opts.KeepPrevious, IfMatch: info.ETag, Log: true, Seq: info.Seq, Time: at})
	if err != nil {
		return res, err
	}
	res.Compacted, res.ETag, res.Size = true, pub.ETag, f.Size
	res.Pruned, err = prune(ctx, b, key, PruneOptions{Retention: opts.Retention}, info.BaseSeq)
	return res, err
}

// prune is Prune, never deleting the deltas after sequence grace.
func prune(ctx context.Context, b bucket.Bucket, key string, opts PruneOptions, grace uint64) (PruneResult, error) {
	opts.DryRun = true
	plan, err := Prune(ctx, b, key, opts)
	if err != nil {
		return plan, err
	}
	var keep []string
	for _, k := range plan.Deleted {
		if seq, archive, ok := parseLogName(k[len(LogPrefix(key)):]); ok && !archive && seq > grace {
			continue
		}
		keep = append(keep, k)
		if err := b.Delete(ctx, k); err != nil {
			plan.Deleted = keep
			return plan, fail("prune", key, err)
		}
	}
	plan.Deleted = keep
	return plan, nil
}

// openFile wraps the plain database file at path as a File, hashing it.
func openFile(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	hash, size, err := hashFile(osf)
	if err != nil {
		osf.Close()
		return nil, err
	}
	return &File{f: osf, path: path, Hash: hash, Size: size}, nil
}

// PushOptions tune Push.
type PushOptions struct {
	// Force replaces a database that exists at the key (conditionally on
	// the ETag it had when Push looked); without it, Push refuses to.
	Force bool
	// KeepPrevious copies the base being replaced to KEY.prev.
	KeepPrevious bool
	// Retention, when above 0, archives the base being replaced
	// (ArchiveKey), so that restores to a time before the push stay
	// possible.
	Retention time.Duration
	// TempDir is where the file's snapshot is taken; empty means
	// os.TempDir().
	TempDir string
}

// PushResult is what Push did.
type PushResult struct {
	// ETag, SHA256 and Size describe the new base.
	ETag, SHA256 string
	Size         int64
	// Seq is the sequence the new base records.
	Seq uint64
	// Replaced reports that a database existed and was replaced.
	Replaced bool
	// KeptPrevious reports that it was copied to KEY.prev.
	KeptPrevious bool
	// Archived is the key it was archived at, if it was.
	Archived string
	// Claimed is the delta Push wrote to end the old log (see Push), if
	// it wrote one.
	Claimed string
}

// Push makes the SQLite file at path the database at key: a new base.
// The file is copied with SQLite's backup API (so a database in WAL mode,
// with its -wal file, is read as SQLite reads it), checked with PRAGMA
// quick_check, and uploaded in rollback-journal mode.
//
// Without opts.Force it is refused with ErrConflict if a database exists
// at key; the upload is conditional (If-None-Match) so one created
// meanwhile is not overwritten either. With opts.Force it replaces the
// database conditionally on the ETag Push saw (KEY.prev kept with
// opts.KeepPrevious).
//
// When the key has a delta log ending at sequence L, Push first claims
// sequence L+1 with an empty delta (If-None-Match) that continues the old
// log without changing it, and the new base records L+1: its own log
// starts at L+2. A writer still running on the old database is fenced:
// its next delta would be L+1 and fails its condition (a conflict), and
// its next base fails its If-Match. Readers of the new base never read
// the old log; readers of the old base read the empty delta as a no-op.
// If the upload of the base fails, the claim is deleted again.
func Push(ctx context.Context, b bucket.Bucket, key, path string, opts PushOptions) (PushResult, error) {
	if err := ValidateKey(key); err != nil {
		return PushResult{}, fail("push", key, err)
	}
	if _, err := os.Stat(path); err != nil {
		return PushResult{}, fail("push", key, err)
	}
	src, err := openConn(path, url.Values{"mode": {"ro"}})
	if err != nil {
		return PushResult{}, fail("push", key, fmt.Errorf("open %s: %w", path, err))
	}
	f, err := Take(ctx, src, opts.TempDir)
	src.Close()
	if err != nil {
		return PushResult{}, fail("push", key, fmt.Errorf("%s: %w", path, err))
	}
	defer f.Remove()
	for attempt := 1; ; attempt++ {
		res, err := pushOnce(ctx, b, key, f, opts)
		if !errors.Is(err, errClaimTaken) || attempt == 3 {
			return res, err
		}
	}
}

// errClaimTaken means a writer wrote the sequence Push meant to claim.
var errClaimTaken = errors.New("a writer wrote the next sequence meanwhile")

func pushOnce(ctx context.Context, b bucket.Bucket, key string, f *File, opts PushOptions) (PushResult, error) {
	h, err := ReadHistory(ctx, b, key, HistoryOptions{})
	if err != nil {
		return PushResult{}, err
	}
	res := PushResult{SHA256: f.Hash, Size: f.Size}
	flush := FlushOptions{KeepPrevious: opts.KeepPrevious, Log: true, Time: time.Now()}
	if h.Base != nil {
		if !opts.Force {
			return res, &Error{Op: "push", Key: key, Kind: ErrConflict,
				Err: fmt.Errorf("a database exists there (ETag %s, %d bytes): replace it with force", h.Base.ETag, h.Base.Size)}
		}
		flush.IfMatch, res.Replaced = h.Base.ETag, true
	}
	if last := h.LastSeq(); last > 0 || len(h.Deltas) > 0 || h.Base != nil && h.Base.Log {
		d, err := endingDelta(ctx, b, key, h, f, flush.Time)
		if err != nil {
			return res, err
		}
		if res.Claimed, err = claim(ctx, b, key, d); err != nil {
			return res, err
		}
		flush.Seq = d.Seq
	}
	res.Seq = flush.Seq
	undo := func() {
		if res.Claimed != "" {
			b.Delete(context.WithoutCancel(ctx), res.Claimed)
			res.Claimed = ""
		}
	}
	if opts.Retention > 0 && h.Base != nil && h.Base.Log {
		if res.Archived, err = Archive(ctx, b, key, h.Base.ETag, h.Base.Seq); err != nil {
			undo()
			return res, err
		}
	}
	pub, err := Publish(ctx, f, b, key, flush)
	res.KeptPrevious = pub.KeptPrevious
	if err != nil {
		undo()
		return res, err
	}
	res.ETag = pub.ETag
	return res, nil
}

// endingDelta returns the empty delta that claims the sequence after the
// last h holds: a no-op on the old log's last state when that can be
// known (from its last delta, or from its base), else on f's.
func endingDelta(ctx context.Context, b bucket.Bucket, key string, h *History, f *File, at time.Time) (*Delta, error) {
	last := h.LastSeq()
	d := &Delta{Seq: last + 1, BaseSeq: last, Time: at.UTC(), Writer: thisWriter()}
	if n := len(h.Deltas); n > 0 && h.Deltas[n-1].Seq == last {
		e := downloadDelta(ctx, b, key, last)
		if e.err == nil && !e.missing {
			if old, err := DecodeDelta(bytes.NewReader(e.data)); err == nil {
				d.Base, d.BaseSeq, d.PageSize, d.Commit, d.PreChecksum = old.Base, old.BaseSeq, old.PageSize, old.Commit, old.PostChecksum
				d.PostChecksum = d.PreChecksum
				return d, nil
			}
		}
	}
	if h.Base != nil && h.Base.Log && h.Base.Seq == last && h.Base.SHA256 != "" {
		im, err := downloadImage(ctx, b, h.Base.Key)
		if err == nil {
			d.Base, d.BaseSeq, d.PageSize, d.Commit = h.Base.SHA256, h.Base.Seq, uint32(im.PageSize), im.Pages()
			d.PreChecksum, d.PostChecksum = im.Checksum, im.Checksum
			return d, nil
		}
	}
	// No state of the old log to continue: an empty delta of the new
	// base, which nothing reads.
	im, err := FileImage(f.Path())
	if err != nil {
		return nil, fail("push", key, err)
	}
	d.Base, d.PageSize, d.Commit, d.PreChecksum, d.PostChecksum = f.Hash, uint32(im.PageSize), im.Pages(), im.Checksum, im.Checksum
	return d, nil
}

// downloadImage downloads the base at k into a temp file and returns its
// Image.
func downloadImage(ctx context.Context, b bucket.Bucket, k string) (*Image, error) {
	tmp, err := tempFile("", restPattern)
	if err != nil {
		return nil, err
	}
	defer removeDB(tmp.Name())
	defer tmp.Close()
	a, err := b.Download(ctx, k, tmp)
	if err != nil {
		return nil, err
	}
	ps, err := pageSizeOf(tmp)
	if err != nil {
		return nil, err
	}
	return ImageFromFile(tmp, a.Size, ps)
}

// claim writes d with If-None-Match and returns its key; a sequence
// already taken is errClaimTaken.
func claim(ctx context.Context, b bucket.Bucket, key string, d *Delta) (string, error) {
	var buf bytes.Buffer
	if _, err := d.Encode(&buf); err != nil {
		return "", fail("push", key, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	k := LogKey(key, d.Seq)
	_, err := b.Upload(ctx, k, bytes.NewReader(buf.Bytes()), int64(buf.Len()),
		bucket.WriteOptions{IfNoneMatch: true, Metadata: map[string]string{MetaSHA256: hex.EncodeToString(sum[:])}})
	if errors.Is(err, bucket.ErrPrecondition) {
		return "", errClaimTaken
	}
	if err != nil {
		return "", fail("push", k, err)
	}
	return k, nil
}
