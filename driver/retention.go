//go:build cgo

package driver

import (
	"context"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// archive keeps the base about to be replaced (whose ETag is etag) as an
// archived base, when the writer has a retention and the base is one of
// its log's: restores to a time before the compaction start from it.
func (l *logSync) archive(ctx context.Context, etag string) error {
	if l.retention == 0 || l.im == nil || etag == "" {
		return nil
	}
	_, err := snapshot.Archive(ctx, l.b, l.key, etag, l.baseSeq)
	return err
}

// prune deletes, after a compaction, what no restore needs any more:
// without a retention the deltas up to the replaced base's sequence
// (deleteThrough); with one, what snapshot.Prune finds expired. Best
// effort: what is left behind costs storage, never correctness.
func (l *logSync) prune(ctx context.Context, oldBaseSeq uint64) {
	if l.retention == 0 {
		l.deleteThrough(ctx, oldBaseSeq)
		return
	}
	if _, err := snapshot.Prune(ctx, l.b, l.key, snapshot.PruneOptions{Retention: l.retention}); err != nil {
		l.log.Warn("bucketsqlite: cannot prune expired bases and deltas", "err", err)
	}
}
