package snapshot

import (
	"bytes"
	"context"

	"github.com/buckethead/bucketsqlite/bucket"
)

// FetchDelta downloads delta seq of key's log, checks it against the
// SHA-256 its object metadata records, and decodes it. A delta that does
// not exist (yet, or any more) is (nil, 0, nil): one GET answers "is there
// news?", which is what a read replica asks every poll. size is the
// object's size in bytes. A damaged delta is an error matching ErrCorrupt.
//
// It does not apply the delta: ApplyDelta checks that it follows the
// caller's image.
func FetchDelta(ctx context.Context, b bucket.Bucket, key string, seq uint64) (d *Delta, size int64, err error) {
	e := downloadDelta(ctx, b, key, seq)
	switch {
	case e.missing:
		return nil, 0, nil
	case e.err != nil:
		return nil, 0, e.err
	}
	d, err = DecodeDelta(bytes.NewReader(e.data))
	if err != nil {
		return nil, 0, corrupt("fetch", LogKey(key, seq), "%w", err)
	}
	if d.Seq != seq {
		return nil, 0, corrupt("fetch", LogKey(key, seq), "holds sequence %d", d.Seq)
	}
	return d, int64(len(e.data)), nil
}
