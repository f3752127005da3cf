package snapshot

import (
	"fmt"
	"time"
)

// MetaSHA256 is the object-metadata key under which Flush records the
// snapshot's SHA-256 (lower-case hex). Restore verifies a download against
// it when present; snapshots written without it (by the Python original,
// say) restore too.
const MetaSHA256 = "sha256"

// MetaKeySHA256 is the object-metadata key under which Flush records the
// SHA-256 (lower-case hex) of the key it flushed to. A server-side copy
// keeps it, so that an object at KEY.prev carrying KEY's hash is known to
// be KEY's previous snapshot, which the next flush may replace, and
// anything else at KEY.prev is not (see FlushOptions.KeepPrevious). It is
// a hash, not the key itself, because metadata values are ASCII and
// short.
const MetaKeySHA256 = "key-sha256"

// Check is how thoroughly a restore verifies a snapshot before using it.
type Check int

const (
	// CheckFull runs PRAGMA integrity_check (https://sqlite.org/pragma.html#pragma_integrity_check):
	// every page, index and constraint. The default.
	CheckFull Check = iota
	// CheckQuick runs PRAGMA quick_check: like integrity_check without
	// verifying index contents; O(N) rather than O(N log N).
	CheckQuick
	// CheckNone only opens the file as SQLite. The SHA-256 in the object's
	// metadata, when there is one, is still verified.
	CheckNone
)

// String returns the check's name as the DSN spells it: "full", "quick"
// or "none".
func (c Check) String() string {
	switch c {
	case CheckFull:
		return "full"
	case CheckQuick:
		return "quick"
	case CheckNone:
		return "none"
	}
	return fmt.Sprintf("Check(%d)", int(c))
}

// ParseCheck parses "full", "quick" or "none".
func ParseCheck(s string) (Check, error) {
	switch s {
	case "full":
		return CheckFull, nil
	case "quick":
		return CheckQuick, nil
	case "none":
		return CheckNone, nil
	}
	return 0, fmt.Errorf("unknown integrity check %q (want full, quick or none)", s)
}

// RestoreOptions tune a restore. The zero value is a full integrity check
// with temp files in os.TempDir (RestoreConn) or beside the target
// (RestoreFile).
type RestoreOptions struct {
	// Check selects the integrity check; CheckFull by default.
	Check Check
	// Image asks for the restored database's Image (Info.Image), which a
	// writer continuing a delta log needs; it costs a read of the file.
	Image bool
	// TempDir is where RestoreConn downloads the snapshot. Empty means
	// os.TempDir(). RestoreFile always downloads beside its target so that
	// the final rename is atomic.
	TempDir string

	// At, when set, restores the database as of the last flush at or
	// before At rather than the latest: from the newest base (KEY,
	// KEY.prev or an archived base) flushed at or before At, the deltas
	// flushed at or before At. How far back is possible depends on the
	// writer's retention (see docs/FORMAT.md). See RestorePoint.
	At time.Time
	// Seq, when above 0, restores the database as of sequence Seq: from
	// the newest base that includes at most Seq, its deltas up to Seq. A
	// sequence the bucket no longer holds, or holds no longer, is an
	// error naming what is missing.
	Seq uint64
}

// Info describes the snapshot a restore found.
type Info struct {
	// Found is false when no object exists at the key; nothing was
	// restored and the destination is untouched.
	Found bool
	// ETag is the restored object's ETag: pass it as FlushOptions.IfMatch
	// so that the next flush overwrites only this version.
	ETag string
	// SnapshotHash is the SHA-256 (hex) of the restored object's bytes.
	SnapshotHash string
	// Size is the snapshot's size in bytes: the base's, before its log.
	Size int64
	// Log reports that the base records a sequence (MetaSeq): a writer
	// with a delta log wrote it, and its log was applied.
	Log bool
	// Seq is the sequence of the last delta applied, or the base's own
	// when none was.
	Seq uint64
	// BaseSeq is the sequence the base itself records.
	BaseSeq uint64
	// Deltas and DeltaBytes count the deltas applied and their size.
	Deltas     int
	DeltaBytes int64
	// DeltaTime is when the writer flushed the last delta applied
	// (Delta.Time); zero when none was.
	DeltaTime time.Time
	// Image is the restored database's Image, when RestoreOptions.Image
	// asked for it: what a writer continuing the log starts from.
	Image *Image
	// BaseKey is the key of the base restored from: KEY, or with
	// RestoreOptions.At or Seq, KEY.prev or an archived base.
	BaseKey string
	// Time is when the restored state was flushed (the last delta's
	// time, or the base's), when known: set by restores with
	// RestoreOptions.At or Seq.
	Time time.Time
}

// FlushOptions tune a flush.
type FlushOptions struct {
	// KeepPrevious copies the current object at KEY to KEY.prev (a
	// server-side copy) before overwriting it. The first flush to a key
	// has nothing to keep and copies nothing.
	//
	// The copy replaces only what this package wrote there: a missing
	// KEY.prev, the one whose ETag is PrevETag, or one carrying KEY's hash
	// under MetaKeySHA256. Anything else (an object written by hand, by
	// another program, by the Python original) makes Flush fail with
	// ErrForeignObject before anything is written; delete or move it, or
	// flush once with Force, which replaces it.
	KeepPrevious bool

	// PrevETag is the ETag of the object at KEY.prev as the caller's last
	// flush left it (Result.PrevETag); empty when unknown. With it, the
	// copy to KEY.prev costs no request beyond itself, and is made
	// conditional on that ETag where the bucket supports it
	// (bucket.CopyOptions.IfMatch). Without it, or when it is stale,
	// Flush asks the bucket (one Stat) what KEY.prev holds.
	PrevETag string

	// LastHash is the SnapshotHash of the caller's previous flush or
	// restore. When the new snapshot hashes the same, nothing is uploaded
	// or copied.
	LastHash string

	// IfMatch is the ETag of the object the caller last saw at the key
	// (Info.ETag from a restore, Result.ETag from a flush). The upload
	// succeeds only if the object still has it; otherwise Flush returns
	// ErrConflict. Empty means the caller has never seen an object there:
	// the upload then succeeds only if none exists, so a new, empty
	// database can never overwrite a snapshot it did not restore.
	IfMatch string

	// Unconfirmed lists the SnapshotHash of earlier flushes to this key
	// that returned an error: their upload may have reached the bucket all
	// the same (a lost response, a timeout that fired after the write, an
	// unconfirmed upload). When the conditional write fails because the
	// object at the key carries one of these hashes, or this flush's own,
	// the object is this writer's, not another writer's: Flush replaces it
	// (conditionally on its ETag) instead of returning ErrConflict. Pass
	// the hash of every failed flush since the last success; the driver
	// does.
	Unconfirmed []string

	// Log marks the snapshot as the base of a delta log that includes
	// every delta up to sequence Seq (metadata MetaSeq): a restore then
	// applies the deltas after it. See docs/FORMAT.md.
	Log bool
	// Seq is the last delta sequence the base includes (with Log).
	Seq uint64

	// Force overwrites whatever is at the key, unconditionally. Use it only
	// to recover from a conflict on purpose, after deciding that the local
	// database is the one to keep.
	Force bool

	// TempDir is where the snapshot is written before upload. Empty means
	// os.TempDir().
	TempDir string

	// Time is when the state the snapshot holds was flushed, recorded
	// with Log in the base's metadata (MetaTime) for point-in-time
	// restores. Zero means now.
	Time time.Time
}

// Result is the outcome of a flush.
type Result struct {
	// Uploaded is false when nothing was sent to the bucket: the snapshot
	// matched LastHash, or the bucket already held it (an earlier upload
	// of the same snapshot, whose call had failed, had landed).
	Uploaded bool
	// BytesWritten is the number of bytes uploaded (0 when skipped).
	BytesWritten int64
	// SnapshotHash is the SHA-256 (hex) of the snapshot; pass it back as
	// FlushOptions.LastHash.
	SnapshotHash string
	// ETag is the ETag of the object now at the key: the new one after an
	// upload, FlushOptions.IfMatch after a skip. Pass it back as
	// FlushOptions.IfMatch.
	ETag string
	// Size is the snapshot's size in bytes, uploaded or not.
	Size int64
	// KeptPrevious reports that the old object was copied to KEY.prev.
	KeptPrevious bool
	// PrevETag is the ETag of the object at KEY.prev after the copy, or
	// FlushOptions.PrevETag when nothing was copied. It is set even when
	// the flush then failed: pass it back as FlushOptions.PrevETag.
	PrevETag string
}
