package main

import (
	"context"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/buckethead/bucketsqlite/bucket"
)

// progressMin is the smallest transfer that shows a progress bar.
const progressMin = 4 << 20

// terminal returns w if it is a terminal, nil otherwise: progress bars
// are for people, never for a pipe or a file.
func terminal(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return w
	}
	return nil
}

// progressBucket shows a progress bar on w for every download or upload
// of more than progressMin bytes. A download costs one Stat more, to
// learn the size; deltas (small, many) are left alone.
type progressBucket struct {
	bucket.Bucket
	w io.Writer
}

// newBar starts a bar for size bytes.
func (p *progressBucket) newBar(size int64, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
}

// isDelta reports whether key names a delta.
func isDelta(key string) bool {
	i := strings.LastIndex(key, ".log/")
	return i >= 0 && !strings.HasSuffix(key, ".base")
}

func (p *progressBucket) Download(ctx context.Context, key string, dst io.WriterAt) (bucket.Attrs, error) {
	if isDelta(key) {
		return p.Bucket.Download(ctx, key, dst)
	}
	a, err := p.Bucket.Stat(ctx, key)
	if err != nil || a.Size < progressMin {
		return p.Bucket.Download(ctx, key, dst)
	}
	bar := p.newBar(a.Size, "download "+key)
	defer bar.Close()
	c := &counter{bar: bar, max: a.Size}
	return p.Bucket.Download(ctx, key, &countingWriterAt{dst, c})
}

func (p *progressBucket) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts bucket.WriteOptions) (bucket.Attrs, error) {
	if size < progressMin {
		return p.Bucket.Upload(ctx, key, src, size, opts)
	}
	bar := p.newBar(size, "upload "+key)
	defer bar.Close()
	c := &counter{bar: bar, max: size}
	var r io.ReaderAt = &countingReaderAt{src, c}
	if h, ok := src.(bucket.SHA256Source); ok {
		// Keep the hash the source knows: no second pass to compute it.
		r = &hashedCounting{countingReaderAt{src, c}, h}
	}
	return p.Bucket.Upload(ctx, key, r, size, opts)
}

// counter adds transferred bytes to a bar. Parts read twice (an SDK
// retry, a checksum pass) would overshoot: it stops at max.
type counter struct {
	bar *progressbar.ProgressBar
	n   atomic.Int64
	max int64
}

func (c *counter) add(n int) {
	c.bar.Set64(min(c.n.Add(int64(n)), c.max))
}

type countingWriterAt struct {
	w io.WriterAt
	c *counter
}

func (w *countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.w.WriteAt(p, off)
	w.c.add(n)
	return n, err
}

type countingReaderAt struct {
	r io.ReaderAt
	c *counter
}

func (r *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	r.c.add(n)
	return n, err
}

type hashedCounting struct {
	countingReaderAt
	h bucket.SHA256Source
}

func (h *hashedCounting) SHA256() string { return h.h.SHA256() }
