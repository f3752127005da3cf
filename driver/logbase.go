//go:build cgo

package driver

import (
	"context"
	"database/sql/driver"
	"os"
	"strconv"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
	"github.com/mattn/go-sqlite3"
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
	if err := pending(f.Hash); err != nil {
		return out, &snapshot.Error{Op: "flush", Key: l.key, Err: err}
	}
	res, err := snapshot.Publish(ctx, f, l.b, l.key, snapshot.FlushOptions{
		KeepPrevious: l.keepPrevious, IfMatch: remote.ETag, Unconfirmed: remote.Pending, PrevETag: remote.PrevETag,
		Log: true, Seq: l.seq,
	})
	out.result.PrevETag = res.PrevETag
	if err != nil {
		out.result.SnapshotHash = f.Hash
		return out, err
	}
	compacted := l.im != nil
	oldBaseSeq := l.baseSeq
	l.im, l.baseSHA, l.baseSeq, l.pos, l.needBase = im, f.Hash, l.seq, pos, false
	l.baseSize, l.sinceBase, l.deltasSinceBase = f.Size, 0, 0
	if compacted {
		l.counts.compactions++
		l.deleteThrough(ctx, oldBaseSeq)
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

// restartWAL checkpoints and restarts a WAL grown past walRestartBytes,
// once every frame in it was captured. A write that slipped in after the
// capture is in the database file but in no delta: the next flush then
// uploads a new base.
//
// captured is how far the capture read; once the WAL restarted it becomes
// the start of the next generation. restartWAL reports whether it did.
func (l *logSync) restartWAL(ctx context.Context, conn *sqlite3.SQLiteConn, captured *snapshot.WALPosition) bool {
	st, err := os.Stat(l.walPath)
	if err != nil || st.Size() < walRestartBytes {
		return false
	}
	l.unpin()
	defer func() {
		if err := l.repin(ctx); err != nil {
			l.log.Warn("bucketsqlite: cannot pin the WAL", "err", err)
		}
	}()
	conn.ExecContext(ctx, "PRAGMA busy_timeout=100", nil)
	defer conn.ExecContext(context.Background(), "PRAGMA busy_timeout=5000", nil)
	rows, err := conn.QueryContext(ctx, "PRAGMA wal_checkpoint(RESTART)", nil)
	if err != nil {
		return false
	}
	vals := make([]driver.Value, 3)
	err = rows.Next(vals)
	rows.Close()
	if err != nil {
		return false
	}
	busy, _ := vals[0].(int64)
	logFrames, _ := vals[1].(int64)
	if busy != 0 {
		return false // readers in the way: the WAL goes on, no frame is lost
	}
	if logFrames != int64(captured.Frames) {
		l.needBase = true
	}
	salts := *captured
	l.restarted, *captured = &salts, snapshot.WALPosition{}
	return true
}
