//go:build cgo

package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// What one refresh does: poll, apply the deltas that chain, and restore a
// new base when the log no longer brings the replica to the bucket's
// state. Every function here runs with the replica's sem held.

// refreshLocked asks for what is new and applies it; sem is held.
func (r *replica) refreshLocked(ctx context.Context) error {
	if r.im == nil {
		return r.rebase(ctx)
	}
	late := r.interval <= 0 || time.Since(r.lastPoll) > 3*r.interval+time.Second
	urgent := !r.hasLog || r.needHead || late
	if urgent || r.polls >= headEvery {
		etag := r.baseETag
		done, err := r.head(ctx)
		if err != nil || done {
			return err
		}
		if !urgent && r.baseETag == etag {
			// The routine HEAD took this poll's place: one request per
			// interval, and the next delta, if any, comes next time.
			return nil
		}
	}
	r.polls++
	for {
		d, n, err := snapshot.FetchDelta(ctx, r.b, r.key, r.seq+1)
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) {
				r.needHead = true // we may have been away a while
			}
			return err
		}
		r.lastPoll = time.Now()
		if d == nil && (r.seq < r.baseSeq || r.pending != nil && r.seq < r.pending.seq) {
			// The base includes deltas we lack, and this one is gone.
			return r.rebase(ctx)
		}
		if d == nil {
			return nil
		}
		r.count(func(st *Stats) { st.DeltasDownloaded++; st.BytesDownloaded += n })
		if d.PageSize != uint32(r.im.PageSize) || d.PreChecksum != r.im.Checksum {
			return r.chainBroken(ctx, d)
		}
		if err := r.applyDelta(ctx, d); err != nil {
			return err
		}
	}
}

// chainBroken handles a next delta that does not follow the replica's
// state (docs/FORMAT.md, restoring, step 4): if KEY changed, the key was
// replaced by another database, which only its base can bring us to; if
// not, the log is damaged, and downloading the base again would not help.
func (r *replica) chainBroken(ctx context.Context, d *snapshot.Delta) error {
	attrs, err := r.b.Stat(ctx, r.key)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return errors.New("the snapshot is gone from the bucket; the replica keeps its last state")
	case err != nil:
		return err
	case attrs.ETag == r.baseETag:
		return fmt.Errorf("%w: delta %d follows image checksum %016x, but the replica holds %016x and the base did not change",
			snapshot.ErrCorrupt, d.Seq, d.PreChecksum, r.im.Checksum)
	}
	r.log.Info("bucketsqlite: replica's next delta follows another database; restoring the base", "seq", d.Seq)
	return r.rebase(ctx)
}

// head asks for KEY's attributes and acts on a base that changed: done
// reports that nothing is left to do this refresh.
func (r *replica) head(ctx context.Context) (done bool, err error) {
	attrs, err := r.b.Stat(ctx, r.key)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return true, errors.New("the snapshot is gone from the bucket; the replica keeps its last state")
	case err != nil:
		return true, err
	}
	r.lastPoll, r.polls, r.needHead = time.Now(), 0, false
	seq, hasLog, err := metaSeq(attrs)
	if err != nil {
		return true, err
	}
	if attrs.ETag == r.baseETag {
		return !r.hasLog, nil
	}
	if !hasLog || !r.hasLog {
		return true, r.rebase(ctx)
	}
	next := baseRef{etag: attrs.ETag, sha: attrs.Metadata[snapshot.MetaSHA256], seq: seq}
	switch {
	case seq > r.seq:
		// A compaction beyond us: our next delta may be gone. One GET
		// says whether the log still brings us there (cheaper than a
		// base); otherwise the new base must.
		d, n, err := snapshot.FetchDelta(ctx, r.b, r.key, r.seq+1)
		if err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
			return true, err
		}
		if err != nil || d == nil || d.PreChecksum != r.im.Checksum || d.PageSize != uint32(r.im.PageSize) {
			return true, r.rebase(ctx)
		}
		r.count(func(st *Stats) { st.DeltasDownloaded++; st.BytesDownloaded += n })
		r.pending = &next
		if err := r.applyDelta(ctx, d); err != nil {
			return true, err
		}
	case next.sha != "" && next.sha == r.lastBase && seq == r.lastBaseSeq:
		// The base the deltas we applied follow: a compaction of our
		// own log, whose image is ours at its sequence.
		r.adopt(next)
	case seq < r.seq:
		// Not the base our deltas follow, and before them: the key
		// holds another database.
		return true, r.rebase(ctx)
	default:
		// A base at our very sequence: a compaction of our log (its
		// image is ours), or another database; the next delta tells
		// (it follows this base and chains onto our image, or not).
		r.pending = &next
	}
	return false, nil
}

// baseRef names a base: its ETag, SHA-256 and sequence.
type baseRef struct {
	etag, sha string
	seq       uint64
}

// adopt records b as the base the working copy's state follows.
func (r *replica) adopt(b baseRef) {
	r.baseETag, r.baseSHA, r.baseSeq, r.pending = b.etag, b.sha, b.seq, nil
	r.save()
}

// metaSeq reads a base's sequence (snapshot.MetaSeq) and whether it has a
// log.
func metaSeq(attrs bucket.Attrs) (uint64, bool, error) {
	v, ok := attrs.Metadata[snapshot.MetaSeq]
	if !ok {
		return 0, false, nil
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: base metadata %s=%q is not a sequence number", snapshot.ErrCorrupt, snapshot.MetaSeq, v)
	}
	return seq, true, nil
}

// applyDelta checks d against the image with no lock held, then writes it
// under the applier's lock.
func (r *replica) applyDelta(ctx context.Context, d *snapshot.Delta) error {
	next := r.im.Clone()
	sum, err := next.Update(d.Pages, d.Commit)
	if err != nil {
		return fmt.Errorf("%w: delta %d: %v", snapshot.ErrCorrupt, d.Seq, err)
	}
	if sum != d.PostChecksum {
		return fmt.Errorf("%w: delta %d: applying it would give image checksum %016x, not the %016x it records",
			snapshot.ErrCorrupt, d.Seq, sum, d.PostChecksum)
	}
	if err := r.ap.writeDelta(ctx, d); err != nil {
		return r.broken(err)
	}
	r.im, r.seq = next, d.Seq
	r.lastBase, r.lastBaseSeq = d.Base, d.BaseSeq
	if p := r.pending; p != nil && d.Base == p.sha && d.BaseSeq == p.seq {
		r.adopt(*p) // a delta that follows it chained onto our image
	}
	r.count(func(st *Stats) {
		st.DeltasApplied++
		st.LastApply = r.ap.held
		st.WriterFlush = d.Time
	})
	r.save()
	return nil
}

// broken handles a failed write into the working copy: the file no
// longer matches any image, and the next refresh restores a base.
func (r *replica) broken(err error) error {
	if errors.Is(err, errNotWritten) {
		return err
	}
	r.im = nil
	return err
}

// rebase restores KEY (a base and its log) into a scratch file beside the
// working copy, then copies into the working copy, under the applier's
// lock, only the pages that differ.
func (r *replica) rebase(ctx context.Context) error {
	if wait := time.Until(r.rebaseAfter); wait > 0 && r.im != nil {
		return fmt.Errorf("restoring the base failed (%w); next try in %v", r.rebaseErr, wait.Round(time.Second))
	}
	scratch := scratchPath(r.wc.path)
	defer removeScratch(scratch)
	info, err := snapshot.RestoreFile(ctx, r.b, r.key, scratch, snapshot.RestoreOptions{Check: r.check, Image: true})
	if err != nil {
		// Each try downloads the whole base: not every poll.
		r.rebaseAfter, r.rebaseErr = time.Now().Add(max(30*r.interval, 30*time.Second)), err
		return err
	}
	r.rebaseAfter = time.Time{}
	if !info.Found {
		return errors.New("the snapshot is gone from the bucket; the replica keeps its last state")
	}
	r.count(func(st *Stats) {
		st.Rebases++
		st.BytesDownloaded += info.Size + info.DeltaBytes
		st.DeltasDownloaded += int64(info.Deltas)
	})
	if err := r.ap.copyFrom(ctx, scratch, r.im, info.Image); err != nil {
		return r.broken(err)
	}
	r.setBase(info)
	r.count(func(st *Stats) { st.LastApply = r.ap.held })
	r.save()
	return nil
}

// setBase records that the working copy holds what info restored.
func (r *replica) setBase(info snapshot.Info) {
	r.baseETag, r.baseSHA, r.baseSeq, r.seq, r.hasLog, r.im = info.ETag, info.SnapshotHash, info.BaseSeq, info.Seq, info.Log, info.Image
	// A restore ends with the base unchanged since it read it: every
	// delta it applied follows that base.
	r.lastBase, r.lastBaseSeq, r.pending = info.SnapshotHash, info.BaseSeq, nil
	r.lastPoll, r.polls, r.needHead = time.Now(), 0, false
	r.count(func(st *Stats) { st.WriterFlush = info.DeltaTime })
}

// scratchPath is where a rebase restores the new base, beside the
// working copy at path.
func scratchPath(path string) string { return path + "-replica-next" }

// removeScratch removes a rebase's scratch database and its side files.
func removeScratch(path string) {
	for _, side := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + side)
	}
}

// save records, beside a persistent working copy, the state it holds, so
// that a restart goes on from it (see resumeReplica).
func (r *replica) save() {
	if !r.wc.persist || r.im == nil || !r.hasLog {
		return
	}
	st := syncState{Bucket: r.wc.bucket, Key: r.key, ETag: r.baseETag, SHA256: r.baseSHA,
		Seq: r.seq, BaseSeq: r.baseSeq, Image: hexSum(r.im.Checksum)}
	if err := writeState(r.wc.path, st); err != nil {
		r.log.Warn("bucketsqlite: cannot record the replica's state", "err", err)
	}
}
