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
	seq        uint64 // the last sequence applied (or the base's)
	first      uint64 // the first sequence applied, when deltas > 0
	deltas     int
	deltaBytes int64
	size       int64     // the file's size after the log
	pageSize   int       // the database's page size
	want       uint64    // the image checksum the last delta records
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
// is checked as it applies (its own checksum, its sequence, the chain of
// image checksums from one delta to the next, the image checksum after it
// against the pages it replaces); the first sequence that is missing ends
// the log. A base replaced meanwhile is errLogMoved.
//
// The base's own image checksum is not computed here (a pass over the
// whole file): the first delta's PreChecksum stands for it, and the
// caller must check the trust with verifyImage once the file is whole
// (logRestore.want says what the checksum of the restored file must be).
func applyLog(ctx context.Context, b bucket.Bucket, key string, f *os.File, size int64, attrs bucket.Attrs, from uint64) (*logRestore, error) {
	ps, err := pageSizeOf(f)
	if err != nil {
		return nil, err
	}
	lazy := newLazyImage(ps, size)
	lr := &logRestore{seq: from, size: size, pageSize: ps}
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
			return nil, corruptBy("restore", LogKey(key, r.seq), err)
		}
		if d.Seq != r.seq {
			return nil, corrupt("restore", LogKey(key, r.seq), "holds sequence %d", d.Seq)
		}
		if err := lazy.prepare(f, d, lr.deltas == 0); err != nil {
			return nil, err
		}
		if err := ApplyDelta(f, lazy.im, d); err != nil {
			if errors.Is(err, ErrCorrupt) {
				// A delta of another log (written since by a writer that
				// compacted) shows as a checksum mismatch too.
				if moved, merr := baseMoved(ctx, b, key, attrs); merr != nil || moved {
					return nil, firstErr(merr, errLogMoved)
				}
			}
			return nil, corruptBy("restore", LogKey(key, r.seq), err)
		}
		lazy.applied(d)
		if lr.deltas == 0 {
			lr.first = d.Seq
		}
		lr.seq, lr.deltas, lr.deltaBytes = d.Seq, lr.deltas+1, lr.deltaBytes+int64(len(r.data))
		lr.size = int64(d.Commit) * int64(ps)
		lr.want = d.PostChecksum
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
	return lr, nil
}

// verifyImage computes the Image of the restored file and, when deltas
// were applied, checks it against the checksum the last one records: the
// end of the chain that started from the trusted base checksum. A
// mismatch means the first delta does not follow the base (the base was
// replaced meanwhile: errLogMoved) or something is damaged.
func (lr *logRestore) verifyImage(ctx context.Context, b bucket.Bucket, key string, f *os.File, attrs bucket.Attrs) (*Image, error) {
	im, err := ImageFromFile(f, lr.size, lr.pageSize)
	if err != nil {
		return nil, err
	}
	if lr.deltas > 0 && im.Checksum != lr.want {
		if moved, merr := baseMoved(ctx, b, key, attrs); merr != nil || moved {
			return nil, firstErr(merr, errLogMoved)
		}
		return nil, corrupt("restore", key, "the base and deltas %d..%d add up to image checksum %016x, not the %016x the last delta records "+
			"(the first delta does not follow this base)", lr.first, lr.seq, im.Checksum, lr.want)
	}
	return im, nil
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

// lazyImage is the Image of a base being restored, worked out only where
// deltas need it: the sums of the pages a delta replaces or truncates are
// read from the file as the delta comes, and the image checksum of the
// base is taken from the first delta's PreChecksum on trust. The trust is
// checked once, at the end, by the checksum of the whole restored file
// (verifyImage), which runs beside the integrity check: so a restore of a
// base and its log costs one pass over the file, on the other core, not
// one before the deltas and one after.
type lazyImage struct {
	im    *Image
	known []bool // known[pgno-1]: im.Sums[pgno-1] holds the page's sum
	page  []byte
}

func newLazyImage(pageSize int, size int64) *lazyImage {
	n := size / int64(pageSize)
	return &lazyImage{
		im:    &Image{PageSize: pageSize, Sums: make([]uint64, n)},
		known: make([]bool, n),
		page:  make([]byte, pageSize),
	}
}

// prepare fills in the sums d needs from f: those of the existing pages it
// replaces and of the pages beyond its Commit. The first delta's
// PreChecksum stands for the base's image checksum.
func (l *lazyImage) prepare(f DeltaFile, d *Delta, first bool) error {
	if first {
		l.im.Checksum = d.PreChecksum
	}
	if int(d.PageSize) != l.im.PageSize {
		return nil // ApplyDelta refuses it
	}
	n := uint32(len(l.im.Sums))
	for _, p := range d.Pages {
		if p.No <= n {
			if err := l.fill(f, p.No); err != nil {
				return err
			}
		}
	}
	for pgno := d.Commit + 1; pgno <= n; pgno++ {
		if err := l.fill(f, pgno); err != nil {
			return err
		}
	}
	return nil
}

func (l *lazyImage) fill(f DeltaFile, pgno uint32) error {
	if l.known[pgno-1] {
		return nil
	}
	ps := int64(l.im.PageSize)
	if _, err := f.ReadAt(l.page, int64(pgno-1)*ps); err != nil {
		return fmt.Errorf("snapshot: reading page %d: %w", pgno, err)
	}
	data := l.page
	if pgno == 1 {
		data = NormalizePage1(data)
	}
	l.im.Sums[pgno-1] = PageChecksum(pgno, data)
	l.known[pgno-1] = true
	return nil
}

// applied records that d was applied: its pages' sums are known, and
// pages beyond its Commit are gone.
func (l *lazyImage) applied(d *Delta) {
	n := int(d.Commit)
	if n <= len(l.known) {
		l.known = l.known[:n]
	} else {
		l.known = append(l.known, make([]bool, n-len(l.known))...)
	}
	for _, p := range d.Pages {
		l.known[p.No-1] = true
	}
}
