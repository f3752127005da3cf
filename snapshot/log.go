package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
)

// MetaSeq is the metadata key under which a base written by a writer
// with a delta log records the last sequence it includes (decimal; "0"
// for a base with no delta before it). A base without it has no log:
// nothing after it is looked for, so a restore of a plain snapshot costs
// what it always did. See docs/FORMAT.md.
const MetaSeq = "seq"

// logPrefetch is how many deltas a restore downloads ahead of the one it
// applies.
const logPrefetch = 8

// errLogMoved means the base was replaced while its log was read (a
// compaction): the restore starts again from the new base.
var errLogMoved = errors.New("the base was replaced while its log was read")

// logRestore is what applying a log to a downloaded base found.
type logRestore struct {
	seq        uint64
	deltas     int
	deltaBytes int64
	image      *Image
	size       int64
	time       time.Time // the last delta's
}

// baseSeq returns the sequence a base records, and whether it has a log.
func baseSeq(attrs bucket.Attrs) (uint64, bool, error) {
	v, ok := attrs.Metadata[MetaSeq]
	if !ok {
		return 0, false, nil
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("base metadata %s=%q is not a sequence number", MetaSeq, v)
	}
	return seq, true, nil
}

// FileImage returns the Image of the database file at path (its page size
// read from its header).
func FileImage(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ps, err := pageSizeOf(f)
	if err != nil {
		return nil, err
	}
	return ImageFromFile(f, st.Size(), ps)
}

// pageSizeOf reads the page size from a database file's header.
func pageSizeOf(f *os.File) (int, error) {
	var b [2]byte
	if _, err := f.ReadAt(b[:], 16); err != nil {
		return 0, err
	}
	return headerPageSize(b[:]), nil
}

// headerPageSize decodes the page size field of a database header (bytes
// 16–17, big-endian; 1 means 65536).
func headerPageSize(b []byte) int {
	ps := int(b[0])<<8 | int(b[1])
	if ps == 1 {
		ps = 65536
	}
	return ps
}

// applyLog applies, in order, every delta after the base in f (size
// bytes, already verified) whose attrs record sequence from. Each delta
// is checked as it applies (its own checksum, its sequence, the image
// checksums before and after); the first sequence that is missing ends
// the log. A base replaced meanwhile is errLogMoved.
func applyLog(ctx context.Context, b bucket.Bucket, key string, f *os.File, size int64, attrs bucket.Attrs, from uint64, wantImage bool) (*logRestore, error) {
	ps, err := pageSizeOf(f)
	if err != nil {
		return nil, err
	}
	im, err := ImageFromFile(f, size, ps)
	if err != nil {
		return nil, err
	}
	lr := &logRestore{seq: from, image: im, size: size}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := fetchLog(ctx, b, key, from+1)
	for {
		r := <-next
		if r.missing {
			break
		}
		if r.err != nil {
			return nil, r.err
		}
		d, err := DecodeDelta(bytes.NewReader(r.data))
		if err != nil {
			return nil, corrupt("restore", LogKey(key, r.seq), "%w", err)
		}
		if d.Seq != r.seq {
			return nil, corrupt("restore", LogKey(key, r.seq), "holds sequence %d", d.Seq)
		}
		if err := ApplyDelta(f, im, d); err != nil {
			if errors.Is(err, ErrCorrupt) {
				// A delta of another log (written since by a writer that
				// compacted) shows as a checksum mismatch too.
				if moved, merr := baseMoved(ctx, b, key, attrs); merr != nil || moved {
					return nil, firstErr(merr, errLogMoved)
				}
			}
			return nil, corrupt("restore", LogKey(key, r.seq), "%w", err)
		}
		lr.seq, lr.deltas, lr.deltaBytes = d.Seq, lr.deltas+1, lr.deltaBytes+int64(len(r.data))
		lr.size = int64(d.Commit) * int64(ps)
		lr.time = d.Time
	}
	if lr.deltas > 0 {
		// A compaction between reading the base and reading its log can
		// have deleted deltas: the log would then end early, older than
		// what the bucket holds.
		if moved, err := baseMoved(ctx, b, key, attrs); err != nil || moved {
			return nil, firstErr(err, errLogMoved)
		}
	}
	if !wantImage {
		lr.image = nil
	}
	return lr, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// baseMoved reports whether the object at key is no longer the base
// attrs describes.
func baseMoved(ctx context.Context, b bucket.Bucket, key string, attrs bucket.Attrs) (bool, error) {
	now, err := b.Stat(ctx, key)
	if err != nil {
		if errors.Is(err, bucket.ErrNotFound) {
			return true, nil
		}
		return false, fail("restore", key, err)
	}
	return now.ETag != attrs.ETag, nil
}

// logEntry is one downloaded delta, or the end of the log.
type logEntry struct {
	seq     uint64
	data    []byte
	missing bool
	err     error
}

// fetchLog downloads the deltas of key from sequence first on, up to
// logPrefetch at a time, and delivers them in order; after the first
// missing one (or an error) it delivers that and stops.
func fetchLog(ctx context.Context, b bucket.Bucket, key string, first uint64) <-chan logEntry {
	out := make(chan logEntry, 1)
	go func() {
		defer close(out)
		type slot struct {
			done chan struct{}
			e    logEntry
		}
		window := make([]*slot, 0, logPrefetch)
		var wg sync.WaitGroup
		defer wg.Wait()
		start := func(seq uint64) {
			s := &slot{done: make(chan struct{})}
			window = append(window, s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(s.done)
				s.e = downloadDelta(ctx, b, key, seq)
			}()
		}
		seq := first
		for range logPrefetch {
			start(seq)
			seq++
		}
		for len(window) > 0 {
			s := window[0]
			window = window[1:]
			select {
			case <-s.done:
			case <-ctx.Done():
				return
			}
			select {
			case out <- s.e:
			case <-ctx.Done():
				return
			}
			if s.e.missing || s.e.err != nil {
				return
			}
			start(seq)
			seq++
		}
	}()
	return out
}

// downloadDelta downloads one delta into memory and checks it against
// the SHA-256 its metadata records.
func downloadDelta(ctx context.Context, b bucket.Bucket, key string, seq uint64) logEntry {
	k := LogKey(key, seq)
	var w memWriter
	attrs, err := b.Download(ctx, k, &w)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		return logEntry{seq: seq, missing: true}
	case err != nil:
		return logEntry{seq: seq, err: fail("restore", k, err)}
	case int64(len(w.buf)) != attrs.Size:
		return logEntry{seq: seq, err: corrupt("restore", k, "downloaded %d bytes of a %d-byte object", len(w.buf), attrs.Size)}
	}
	if want := attrs.Metadata[MetaSHA256]; want != "" {
		sum := sha256.Sum256(w.buf)
		if got := hex.EncodeToString(sum[:]); got != want {
			return logEntry{seq: seq, err: corrupt("restore", k, "sha256 mismatch: object metadata records %s, downloaded bytes hash to %s", want, got)}
		}
	}
	return logEntry{seq: seq, data: w.buf}
}

// memWriter is an io.WriterAt into memory.
type memWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(w.buf)) {
		if end > int64(cap(w.buf)) {
			nb := make([]byte, end, max(end, 2*int64(cap(w.buf))))
			copy(nb, w.buf)
			w.buf = nb
		} else {
			w.buf = w.buf[:end]
		}
	}
	copy(w.buf[off:], p)
	return len(p), nil
}
