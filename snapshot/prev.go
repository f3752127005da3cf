package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/buckethead/bucketsqlite/bucket"
)

// keyHash is the value Flush records under MetaKeySHA256 for key.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// prevState is what a flush knows of the object at KEY.prev.
type prevState struct {
	exists bool
	etag   string
}

// conditions returns the copy's conditions on its destination: replace
// only the object st describes.
func (st prevState) conditions(opts bucket.CopyOptions) bucket.CopyOptions {
	if st.exists {
		opts.IfMatch = st.etag
	} else {
		opts.IfNoneMatch = true
	}
	return opts
}

// keepPrevious copies key to KEY.prev before an overwrite, replacing only
// what this package wrote there (see FlushOptions.KeepPrevious). It
// returns KEY.prev's ETag afterwards and whether it copied.
//
// The copy is conditional on the source being opts.IfMatch and, where the
// bucket enforces it, on KEY.prev being what the caller last left there
// (opts.PrevETag), so that the usual flush costs the copy alone. When
// PrevETag is unknown, or a condition fails, one Stat of KEY.prev tells
// whether it is this key's and what it is now; a condition that fails
// again is a conflict.
func keepPrevious(ctx context.Context, b bucket.Bucket, key string, opts FlushOptions) (string, bool, error) {
	prev := PrevKey(key)
	keepErr := func(err error) (string, bool, error) {
		return opts.PrevETag, false, fail("flush", key, fmt.Errorf("keep previous: %w", err))
	}
	switch {
	case opts.Force:
		a, err := b.Copy(ctx, key, prev, bucket.CopyOptions{})
		if errors.Is(err, bucket.ErrNotFound) {
			return opts.PrevETag, false, nil
		}
		if err != nil {
			return keepErr(err)
		}
		return a.ETag, true, nil
	case opts.IfMatch == "":
		// A first flush: there is nothing to keep, and the upload's
		// If-None-Match fails if that has changed.
		return opts.PrevETag, false, nil
	}
	st, looked := prevState{exists: true, etag: opts.PrevETag}, false
	if opts.PrevETag == "" {
		var err error
		if st, err = statPrev(ctx, b, key); err != nil {
			return opts.PrevETag, false, err
		}
		looked = true
	}
	for {
		a, err := b.Copy(ctx, key, prev, st.conditions(bucket.CopyOptions{IfSourceMatch: opts.IfMatch}))
		if err == nil {
			return a.ETag, true, nil
		}
		if !errors.Is(err, bucket.ErrPrecondition) && !errors.Is(err, bucket.ErrNotFound) {
			return keepErr(err)
		}
		conflict := &Error{Op: "flush", Key: key, Kind: ErrConflict, Err: fmt.Errorf("keep previous: %w", err)}
		if looked {
			return opts.PrevETag, false, conflict
		}
		// The source changed (another writer: a conflict), or KEY.prev
		// is not what the caller last left there (a copy whose flush
		// failed afterwards, say): look.
		now, serr := statPrev(ctx, b, key)
		if serr != nil {
			return opts.PrevETag, false, serr
		}
		if now == st {
			return opts.PrevETag, false, conflict
		}
		st, looked = now, true
	}
}

// statPrev returns the state of KEY.prev, or an error matching
// ErrForeignObject if it holds an object that is not a snapshot of key.
func statPrev(ctx context.Context, b bucket.Bucket, key string) (prevState, error) {
	a, err := statObject(ctx, b, PrevKey(key))
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return prevState{}, nil
	case err != nil:
		return prevState{}, fail("flush", key, fmt.Errorf("keep previous: %w", err))
	case a.Metadata[MetaKeySHA256] == "" && a.Metadata[MetaSHA256] != "":
		// A snapshot copied before keys were recorded (an earlier release,
		// the Python original): ours only while KEY itself is from before
		// too, which is the one flush after an upgrade. A database of its
		// own at KEY.prev, next to a KEY that records its key, is not.
		ka, err := statObject(ctx, b, key)
		if err != nil && !errors.Is(err, bucket.ErrNotFound) {
			return prevState{}, fail("flush", key, fmt.Errorf("keep previous: %w", err))
		}
		if err == nil && ka.Metadata[MetaKeySHA256] != "" {
			return prevState{}, &Error{Op: "flush", Key: key, Kind: ErrForeignObject,
				Err: fmt.Errorf("keep previous: %q holds a snapshot (ETag %s) that records no key, while %q records its own: "+
					"it is another database's, not overwriting it", PrevKey(key), a.ETag, key)}
		}
	case a.Metadata[MetaKeySHA256] != keyHash(key):
		return prevState{}, &Error{Op: "flush", Key: key, Kind: ErrForeignObject,
			Err: fmt.Errorf("keep previous: %q holds an object (ETag %s) that is not a previous snapshot of %q "+
				"(its %s metadata is %q): not overwriting it", PrevKey(key), a.ETag, key, MetaKeySHA256, a.Metadata[MetaKeySHA256])}
	}
	return prevState{exists: true, etag: a.ETag}, nil
}
