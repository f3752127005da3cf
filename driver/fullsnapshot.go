//go:build cgo

package driver

import (
	"context"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// fullSnapshot is the strategy that ships the whole database as one plain
// SQLite file at the key: the format the Python original and sqlite3 read.
type fullSnapshot struct {
	b            bucket.Bucket
	key          string
	keepPrevious bool
	tempDir      string
}

var _ strategy = (*fullSnapshot)(nil)

func (f *fullSnapshot) flush(ctx context.Context, conn *sqlite3.SQLiteConn, remote remoteState, pending func(string) error) (shipped, error) {
	file, err := snapshot.Take(ctx, conn, f.tempDir)
	if err != nil {
		return shipped{}, &snapshot.Error{Op: "flush", Key: f.key, Err: err}
	}
	defer file.Remove()
	out := shipped{version: file.DataVersion}
	if file.Hash != remote.SHA256 {
		if err := pending(file.Hash); err != nil {
			out.result = snapshot.Result{SnapshotHash: file.Hash, Size: file.Size}
			return out, &snapshot.Error{Op: "flush", Key: f.key, Err: err}
		}
	}
	out.result, err = snapshot.Publish(ctx, file, f.b, f.key, snapshot.FlushOptions{
		KeepPrevious: f.keepPrevious,
		LastHash:     remote.SHA256,
		IfMatch:      remote.ETag,
		Unconfirmed:  remote.Pending,
		PrevETag:     remote.PrevETag,
	})
	return out, err
}
