package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"sync"
)

// hashBuffer is the size of the reads that hash a file, and hashBuffers
// how many of them are in flight.
const (
	hashBuffer  = 256 << 10
	hashBuffers = 4
)

// hashFile returns the hex SHA-256 and the size of f's contents.
func hashFile(f *os.File) (string, int64, error) {
	h := sha256.New()
	n, err := hashFrom(h, f, 0)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// hashFrom writes f's contents from offset off to its end into h, and
// returns how many bytes that was. A goroutine reads ahead while h hashes,
// so that the copies out of the page cache and the hashing overlap (255 ms
// -> 195 ms for 256 MiB on the machine it was measured on).
func hashFrom(h hash.Hash, f io.ReaderAt, off int64) (int64, error) {
	type chunk struct {
		b   []byte
		err error
	}
	free := make(chan []byte, hashBuffers)
	full := make(chan chunk, hashBuffers)
	for range hashBuffers {
		free <- make([]byte, hashBuffer)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for pos := off; ; {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n, err := f.ReadAt(b, pos)
			pos += int64(n)
			if err == io.EOF {
				err = nil
				if n == 0 {
					close(full)
					return
				}
			}
			full <- chunk{b[:n], err}
			if err != nil {
				return
			}
		}
	}()
	var total int64
	for c := range full {
		if c.err != nil {
			return total, c.err
		}
		h.Write(c.b)
		total += int64(len(c.b))
		free <- c.b[:cap(c.b)]
	}
	return total, nil
}

// hashingWriter is a download's destination that hashes the file while
// the download runs: a goroutine follows the bytes written in order from
// offset 0, reading them back (from the page cache) on its own core, so
// that hashing a download adds next to nothing to its time. Bytes that
// arrive out of order (the parallel ranges of a large object) are hashed
// by Sum, once everything has been written.
//
// Whatever the writes, Sum hashes what the file holds: should a write
// land on bytes already written (no Bucket does that, but none promises
// not to), Sum hashes the whole file again.
type hashingWriter struct {
	f *os.File

	mu        sync.Mutex
	cond      sync.Cond
	written   int64 // bytes [0, written) were written, in order
	rewritten bool  // a write landed on bytes already written
	stopped   bool

	// Owned by the goroutine until done is closed.
	h      hash.Hash
	hashed int64 // bytes [0, hashed) are in h
	err    error
	done   chan struct{}
}

func newHashingWriter(f *os.File) *hashingWriter {
	w := &hashingWriter{f: f, h: sha256.New(), done: make(chan struct{})}
	w.cond.L = &w.mu
	go w.follow()
	return w
}

// WriteAt implements io.WriterAt.
func (w *hashingWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(p, off)
	w.mu.Lock()
	switch {
	case off < w.written:
		w.rewritten = true
	case off == w.written:
		w.written += int64(n)
		w.cond.Signal()
	}
	w.mu.Unlock()
	return n, err
}

// follow hashes the bytes written in order as they arrive, until stop.
func (w *hashingWriter) follow() {
	defer close(w.done)
	buf := make([]byte, hashBuffer)
	for {
		w.mu.Lock()
		for w.hashed == w.written && !w.stopped && !w.rewritten {
			w.cond.Wait()
		}
		end, quit := w.written, w.stopped || w.rewritten
		w.mu.Unlock()
		if quit {
			return
		}
		if _, err := io.CopyBuffer(w.h, io.NewSectionReader(w.f, w.hashed, end-w.hashed), buf); err != nil {
			w.err = err
			return
		}
		w.hashed = end
	}
}

// stop ends the goroutine and waits for it. It is safe to call twice.
func (w *hashingWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.cond.Signal()
	w.mu.Unlock()
	<-w.done
}

// Sum returns the hex SHA-256 and the size of the file's contents, once
// every write has returned.
func (w *hashingWriter) Sum() (string, int64, error) {
	w.stop()
	if w.err != nil {
		return "", 0, w.err
	}
	if w.rewritten {
		return hashFile(w.f)
	}
	n, err := hashFrom(w.h, w.f, w.hashed)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(w.h.Sum(nil)), w.hashed + n, nil
}
