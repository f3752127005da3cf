//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// base uploads a new base: the pinned state, which includes every delta up
// to seq and the captured changes (pos). The previous base stays at
// KEY.prev with keep_previous; the deltas of the base before it are
// deleted, those of the previous one stay for restores still reading them.
func (l *logSync) base(ctx context.Context, remote remoteState, pending func(string) error, pos snapshot.WALPosition, out shipped) (shipped, error) {
	f, err := snapshot.Take(ctx, l.pin, l.tempDir)
	if err != nil {
		return out, &snapshot.Error{Op: "flush", Key: l.key, Err: err}
	}
	defer f.Remove()
	im, err := snapshot.FileImage(f.Path())
	if err != nil {
		return out, err
	}
	return l.publishBase(ctx, f, im, remote, pending, pos, out)
}

// publishBase uploads f, whose Image is im, as the new base: the state
// that includes every delta up to seq and the WAL up to pos.
func (l *logSync) publishBase(ctx context.Context, f *snapshot.File, im *snapshot.Image, remote remoteState, pending func(string) error, pos snapshot.WALPosition, out shipped) (shipped, error) {
	if err := pending(f.Hash); err != nil {
		return out, &snapshot.Error{Op: "flush", Key: l.key, Err: err}
	}
	if err := l.archive(ctx, remote.ETag); err != nil {
		return out, err
	}
	res, err := snapshot.Publish(ctx, f, l.b, l.key, snapshot.FlushOptions{
		KeepPrevious: l.keepPrevious, IfMatch: remote.ETag, Unconfirmed: append(slices.Clone(remote.Pending), l.unconfirmed...),
		PrevETag: remote.PrevETag, Log: true, Seq: l.seq,
	})
	out.result.PrevETag = res.PrevETag
	if err != nil {
		out.result.SnapshotHash = f.Hash
		l.unconfirmed = append(l.unconfirmed[max(0, len(l.unconfirmed)-7):], f.Hash)
		return out, err
	}
	l.unconfirmed = nil
	compacted := l.im != nil
	oldBaseSeq := l.baseSeq
	l.im, l.baseSHA, l.baseSeq, l.pos, l.needBase = im, f.Hash, l.seq, pos, false
	l.baseSize, l.sinceBase, l.deltasSinceBase = f.Size, 0, 0
	l.recorded(nil)
	if compacted {
		l.counts.compactions++
		l.prune(ctx, oldBaseSeq)
	}
	out.result = res
	return out, nil
}

// deleteThrough deletes the deltas up to seq that are still in the bucket
// (one LIST finds them: those a crashed writer left behind too), best
// effort: one left behind costs storage, never correctness.
func (l *logSync) deleteThrough(ctx context.Context, seq uint64) {
	objs, err := bucket.ListAll(ctx, l.b, snapshot.LogPrefix(l.key))
	if err != nil {
		l.log.Warn("bucketsqlite: cannot list compacted deltas", "err", err)
		return
	}
	for _, o := range objs {
		n, err := strconv.ParseUint(strings.TrimPrefix(o.Key, snapshot.LogPrefix(l.key)), 10, 64)
		if err != nil || n > seq {
			continue
		}
		if err := l.b.Delete(ctx, o.Key); err != nil {
			l.log.Warn("bucketsqlite: cannot delete a compacted delta", "key", o.Key, "err", err)
			return
		}
	}
}

// checkpoint copies the WAL into the database file once it has grown
// past walRestartBytes, with the write lock still held by the capture that
// read it up to captured: no frame can be added meanwhile, so once every
// frame is copied (PASSIVE, on the pin's connection, which waits for no
// one), the next writer restarts the WAL from its first frame and nothing
// uncaptured is lost. A reader still on an old snapshot keeps some frames
// from being copied: the WAL then simply goes on.
func (l *logSync) checkpoint(ctx context.Context, captured snapshot.WALPosition) error {
	st, err := os.Stat(l.walPath)
	if err != nil || st.Size() < walRestartBytes || l.pin == nil {
		return nil
	}
	l.unpin()
	rows, err := l.pin.QueryContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)", nil)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	vals := make([]driver.Value, 3)
	err = rows.Next(vals)
	rows.Close()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	logFrames, _ := vals[1].(int64)
	copied, _ := vals[2].(int64)
	if logFrames == copied && logFrames == int64(captured.Frames) {
		l.armed = &captured
	}
	return nil
}
