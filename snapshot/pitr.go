//go:build cgo

package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
)

// ErrNotKept means a point-in-time restore asked for a state the bucket
// does not hold: older than the oldest base kept (the writer's retention
// has expired it), or beyond the end of the log.
var ErrNotKept error = &kind{"state not kept"}

// formatTime is how MetaTime spells t (now when zero).
func formatTime(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// describePoint says which state opts ask for, for messages.
func describePoint(opts RestoreOptions) string {
	if opts.Seq > 0 {
		return fmt.Sprintf("sequence %d", opts.Seq)
	}
	return "the state at " + opts.At.UTC().Format(time.RFC3339Nano)
}

// before reports whether base v may start a restore to the point opts
// name: it includes no later state.
func before(v Version, opts RestoreOptions) bool {
	if opts.Seq > 0 {
		return v.Seq <= opts.Seq
	}
	return !v.Time.After(opts.At)
}

// choosePoint picks the base a restore to the point opts name starts
// from: the newest at or before it.
func choosePoint(h *History, opts RestoreOptions) (Version, error) {
	bases := h.Bases()
	if h.Base != nil && !h.Base.Log {
		// A plain snapshot has no log: it is its own only state.
		bases = append(bases, *h.Base)
	}
	for i := len(bases) - 1; i >= 0; i-- {
		if before(bases[i], opts) {
			return bases[i], nil
		}
	}
	if len(bases) == 0 {
		return Version{}, &Error{Op: "restore", Key: h.Key, Kind: ErrNotKept, Err: errors.New("no base in the bucket")}
	}
	oldest := bases[0]
	return Version{}, &Error{Op: "restore", Key: h.Key, Kind: ErrNotKept,
		Err: fmt.Errorf("%s is older than the oldest base kept, %s (sequence %d, flushed %s): expired by the retention, or never written",
			describePoint(opts), oldest.Key, oldest.Seq, oldest.Time.Format(time.RFC3339Nano))}
}

// fetchPointOnce is one attempt of fetch to the point RestoreOptions.At
// or Seq name.
func fetchPointOnce(ctx context.Context, b bucket.Bucket, key string, tmp *os.File, opts RestoreOptions, sync bool) (Info, *sqlite3.SQLiteConn, error) {
	h, err := ReadHistory(ctx, b, key, HistoryOptions{})
	if err != nil {
		return Info{}, nil, err
	}
	base, err := choosePoint(h, opts)
	if err != nil {
		return Info{}, nil, err
	}
	hw := newHashingWriter(tmp)
	defer hw.stop()
	attrs, err := b.Download(ctx, base.Key, hw)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return Info{}, nil, errLogMoved // replaced or pruned since listed
	case err != nil:
		return Info{}, nil, fail("restore", base.Key, err)
	case attrs.ETag != base.ETag:
		return Info{}, nil, errLogMoved
	}
	hash, size, err := hw.Sum()
	if err != nil {
		return Info{}, nil, fail("restore", base.Key, fmt.Errorf("hash download: %w", err))
	}
	if size != attrs.Size {
		return Info{}, nil, corrupt("restore", base.Key, "downloaded %d bytes of a %d-byte object", size, attrs.Size)
	}
	if want := attrs.Metadata[MetaSHA256]; want != "" && want != hash {
		return Info{}, nil, corrupt("restore", base.Key, "sha256 mismatch: object metadata records %s, downloaded bytes hash to %s", want, hash)
	}
	if err := checkHeader(tmp, size); err != nil {
		return Info{}, nil, corrupt("restore", base.Key, "not a valid SQLite file: %w", err)
	}
	info := Info{Found: true, ETag: attrs.ETag, SnapshotHash: hash, Size: size, BaseKey: base.Key,
		Log: base.Log, Seq: base.Seq, BaseSeq: base.Seq, Time: base.Time}
	if base.Log {
		im, err := applyUntil(ctx, b, key, tmp, size, opts, &info)
		if err != nil {
			return Info{}, nil, err
		}
		if opts.Image {
			info.Image = im
		}
		if err := checkLogEnd(h, opts, info); err != nil {
			return Info{}, nil, err
		}
	} else if opts.Image {
		ps, err := pageSizeOf(tmp)
		if err == nil {
			info.Image, err = ImageFromFile(tmp, size, ps)
		}
		if err != nil {
			return Info{}, nil, fail("restore", key, err)
		}
	}
	if opts.Seq > 0 && info.Seq != opts.Seq {
		return Info{}, nil, &Error{Op: "restore", Key: key, Kind: ErrNotKept,
			Err: fmt.Errorf("sequence %d is beyond the log: from %s it ends at %d", opts.Seq, base.Key, info.Seq)}
	}
	src, err := openChecked(ctx, key, tmp, opts.Check, sync)
	if err != nil {
		return Info{}, nil, err
	}
	return info, src, nil
}

// applyUntil applies to the base in f (size bytes) the deltas after
// info.Seq in order, each checked as applyLog checks it, up to the point
// opts name; it updates info and returns the restored file's Image.
func applyUntil(ctx context.Context, b bucket.Bucket, key string, f *os.File, size int64, opts RestoreOptions, info *Info) (*Image, error) {
	ps, err := pageSizeOf(f)
	if err != nil {
		return nil, fail("restore", key, err)
	}
	im, err := ImageFromFile(f, size, ps)
	if err != nil {
		return nil, fail("restore", key, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Seq > 0 && info.Seq >= opts.Seq {
		return im, nil
	}
	next := fetchLog(ctx, b, key, info.Seq+1)
	for {
		r := <-next
		if r.missing {
			break
		}
		if r.err != nil {
			return nil, r.err
		}
		k := LogKey(key, r.seq)
		d, err := DecodeDelta(bytes.NewReader(r.data))
		if err != nil {
			return nil, corrupt("restore", k, "%w", err)
		}
		if d.Seq != r.seq {
			return nil, corrupt("restore", k, "holds sequence %d", d.Seq)
		}
		if !opts.At.IsZero() && d.Time.After(opts.At) {
			break
		}
		if err := ApplyDelta(f, im, d); err != nil {
			return nil, corrupt("restore", k, "does not follow %s and the deltas before it: %w", info.BaseKey, err)
		}
		info.Seq, info.Deltas, info.DeltaBytes, info.Time = d.Seq, info.Deltas+1, info.DeltaBytes+int64(len(r.data)), d.Time
		if opts.Seq > 0 && d.Seq == opts.Seq {
			break
		}
	}
	if info.Deltas > 0 {
		if err := checkHeader(f, int64(len(im.Sums))*int64(ps)); err != nil {
			return nil, corrupt("restore", key, "the base and its log do not make a valid SQLite file: %w", err)
		}
	}
	return im, nil
}

// checkLogEnd makes sure a log that ended before the point asked for did
// not end early: no base the history lists, at or before the point,
// includes a later sequence than the one reached.
func checkLogEnd(h *History, opts RestoreOptions, info Info) error {
	for _, v := range h.Bases() {
		if v.Seq > info.Seq && before(v, opts) {
			return &Error{Op: "restore", Key: h.Key, Kind: ErrCorrupt,
				Err: fmt.Errorf("the log after %s ends at sequence %d, but %s includes sequence %d: delta %s is missing",
					info.BaseKey, info.Seq, v.Key, v.Seq, LogKey(h.Key, info.Seq+1))}
		}
	}
	return nil
}

// openChecked sets tmp's header to rollback-journal mode, runs the
// integrity check c on it and, with sync, fsyncs it meanwhile; it returns
// an open read-only connection to it.
func openChecked(ctx context.Context, key string, tmp *os.File, c Check, sync bool) (*sqlite3.SQLiteConn, error) {
	if err := setRollbackHeader(tmp); err != nil {
		return nil, fail("restore", key, err)
	}
	// The fsync writes the file back to disk while the integrity check,
	// which only reads it, runs on the other core.
	synced := make(chan error, 1)
	if sync {
		go func() { synced <- tmp.Sync() }()
	} else {
		synced <- nil
	}
	src, err := openConn(tmp.Name(), url.Values{"mode": {"ro"}})
	if err != nil {
		<-synced
		return nil, corrupt("restore", key, "not a valid SQLite file: %w", err)
	}
	if err := check(ctx, src, c); err != nil {
		src.Close()
		<-synced
		if ctx.Err() != nil {
			return nil, fail("restore", key, ctx.Err())
		}
		return nil, corrupt("restore", key, "failed %s integrity check: %w", c, err)
	}
	if err := <-synced; err != nil {
		src.Close()
		return nil, fail("restore", key, err)
	}
	return src, nil
}
