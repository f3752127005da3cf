package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// hashingWriter's Sum is the SHA-256 of what the file holds, whatever
// order the writes came in, and even when some land on bytes already
// written.
func TestHashingWriter(t *testing.T) {
	const size = 3<<20 + 12345
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	type write struct{ off, end int64 }
	chunks := func(step int64) []write {
		var ws []write
		for off := int64(0); off < size; off += step {
			ws = append(ws, write{off, min(off+step, size)})
		}
		return ws
	}
	for _, tc := range []struct {
		name     string
		writes   []write
		parallel bool
		// overwrite first writes these ranges with other bytes.
		overwrite []write
	}{
		{name: "in order", writes: chunks(256 << 10)},
		{name: "one write", writes: chunks(size)},
		{name: "empty", writes: nil},
		{name: "reversed", writes: reversed(chunks(100 << 10))},
		{name: "parallel ranges", writes: chunks(1 << 20), parallel: true},
		{name: "rewritten", writes: chunks(64 << 10), overwrite: []write{{0, 1 << 20}, {2 << 20, 2<<20 + 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w := newHashingWriter(f)
			junk := make([]byte, size)
			for _, o := range tc.overwrite {
				if _, err := w.WriteAt(junk[o.off:o.end], o.off); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for _, c := range tc.writes {
				put := func() {
					if _, err := w.WriteAt(data[c.off:c.end], c.off); err != nil {
						t.Error(err)
					}
				}
				if tc.parallel {
					wg.Go(put)
				} else {
					put()
				}
			}
			wg.Wait()
			got, n, err := w.Sum()
			if err != nil {
				t.Fatal(err)
			}
			content, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(content)
			if want := hex.EncodeToString(sum[:]); got != want || n != int64(len(content)) {
				t.Fatalf("Sum = %s, %d; the file's is %s, %d", got, n, want, len(content))
			}
			w.stop() // a second stop is harmless
		})
	}
}

func reversed[T any](s []T) []T {
	r := make([]T, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	return r
}

// A hashingWriter whose download failed is stopped without a Sum.
func TestHashingWriterStop(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newHashingWriter(f)
	if _, err := w.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	w.stop()
}

// errReaderAt fails every read from offset at on.
type errReaderAt struct {
	data []byte
	at   int64
}

var errRead = errors.New("read failed (injected)")

func (r errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.at {
		return 0, errRead
	}
	n := copy(p, r.data[off:min(int64(len(r.data)), r.at)])
	if off+int64(n) >= r.at && n < len(p) {
		return n, errRead
	}
	return n, nil
}

// hashFrom hashes from an offset to the end, whatever the length, and
// returns a read error as it is.
func TestHashFrom(t *testing.T) {
	data := make([]byte, 3*hashBuffer+77)
	rand.NewChaCha8([32]byte{2}).Read(data)
	for _, size := range []int{0, 1, hashBuffer, hashBuffer + 1, len(data)} {
		for _, off := range []int{0, 1, hashBuffer} {
			if off > size {
				continue
			}
			h := sha256.New()
			n, err := hashFrom(h, bytes.NewReader(data[:size]), int64(off))
			want := sha256.Sum256(data[off:size])
			if err != nil || n != int64(size-off) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("size %d from %d: %d bytes, %v; hash differs: %v", size, off, n, err, !bytes.Equal(h.Sum(nil), want[:]))
			}
		}
	}
	if _, err := hashFrom(sha256.New(), errReaderAt{data, 2*hashBuffer + 5}, 0); !errors.Is(err, errRead) {
		t.Fatalf("hashFrom of a failing reader = %v", err)
	}
}
