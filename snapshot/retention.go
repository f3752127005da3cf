package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
)

// PruneOptions tune Prune.
type PruneOptions struct {
	// Retention is how far back point-in-time restores must stay
	// possible: the newest base flushed at or before Now-Retention, and
	// everything after it, are kept. 0 keeps only what a restore of the
	// latest state may need, as a writer without retention does.
	Retention time.Duration
	// Now is the time Retention counts back from; zero means time.Now().
	Now time.Time
	// DryRun lists what would be deleted without deleting it.
	DryRun bool
}

// PruneResult is what Prune deleted (or, with DryRun, would delete).
type PruneResult struct {
	// Keep is the oldest base a restore within the retention starts
	// from; nil when every base is younger than the retention (nothing
	// is deleted then).
	Keep *Version
	// Deleted are the keys deleted, archived bases first, oldest first.
	Deleted []string
}

// Prune deletes the archived bases and deltas of key that no restore
// within opts.Retention can need (docs/FORMAT.md, "Retention"): for
// T0 = Now - Retention, it keeps the newest base (current, KEY.prev or
// archived) flushed at or before T0 and everything after it, and deletes
// older archived bases, then the deltas up to that base's sequence,
// except those after the base that came before the current one (a reader
// that fetched that base may still be reading them).
//
// It costs what ReadHistory costs without delta headers (one LIST, plus a
// Stat of KEY, KEY.prev and each archived base) and one DELETE per object
// deleted. Archived bases go first, so that an archived base is never
// left without its deltas should Prune stop half way.
func Prune(ctx context.Context, b bucket.Bucket, key string, opts PruneOptions) (PruneResult, error) {
	h, err := ReadHistory(ctx, b, key, HistoryOptions{})
	if err != nil {
		return PruneResult{}, err
	}
	plan := planPrune(h, opts)
	if opts.DryRun {
		return plan, nil
	}
	for _, k := range plan.Deleted {
		if err := b.Delete(ctx, k); err != nil {
			return plan, fail("prune", key, err)
		}
	}
	return plan, nil
}

// planPrune decides what Prune deletes from h.
func planPrune(h *History, opts PruneOptions) PruneResult {
	var res PruneResult
	if h.Base == nil || !h.Base.Log {
		return res // no log: nothing of one to prune
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	t0 := now.Add(-opts.Retention)
	bases := h.Bases()
	keep := -1
	for i, v := range bases {
		if v.Seq <= h.Base.Seq && !v.Time.After(t0) {
			keep = i
		}
	}
	if keep < 0 {
		return res
	}
	k := bases[keep]
	res.Keep = &k
	// The deltas of the base before the current one stay: readers that
	// fetched it before it was replaced read them still.
	cut := min(k.Seq, graceSeq(h))
	for _, v := range h.Archives {
		if v.Seq < k.Seq {
			res.Deleted = append(res.Deleted, v.Key)
		}
	}
	for _, v := range h.Deltas {
		if v.Seq <= cut {
			res.Deleted = append(res.Deleted, v.Key)
		}
	}
	return res
}

// graceSeq is the sequence after which deltas stay whatever the
// retention: that of the newest base before the current one (archived or
// at KEY.prev), or, when none is known, the current base's.
func graceSeq(h *History) uint64 {
	grace, found := uint64(0), false
	for _, v := range h.Bases() {
		if v.Seq < h.Base.Seq {
			grace, found = max(grace, v.Seq), true
		}
	}
	if !found {
		return h.Base.Seq
	}
	return grace
}

// Archive copies the base at key, as long as its ETag is etag, to
// ArchiveKey(key, seq) on the server side (metadata included): a writer
// with a retention does so before it replaces the base. An archive of
// that sequence already there (a retried compaction's) is left as it is.
func Archive(ctx context.Context, b bucket.Bucket, key, etag string, seq uint64) (string, error) {
	dst := ArchiveKey(key, seq)
	_, err := b.Copy(ctx, key, dst, bucket.CopyOptions{IfSourceMatch: etag, IfNoneMatch: true})
	switch {
	case err == nil:
		return dst, nil
	case errors.Is(err, bucket.ErrPrecondition):
		if _, serr := b.Stat(ctx, dst); serr == nil {
			return dst, nil
		}
		return "", &Error{Op: "archive", Key: key, Kind: ErrConflict, Err: fmt.Errorf("the base changed (no longer ETag %s): %w", etag, err)}
	case errors.Is(err, bucket.ErrNotFound):
		return "", &Error{Op: "archive", Key: key, Kind: ErrConflict, Err: err}
	}
	return "", fail("archive", key, err)
}
