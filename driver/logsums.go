//go:build cgo

package driver

import (
	"encoding/binary"
	"os"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// pageSums keeps, beside a persistent working copy, the page checksums of
// the image the bucket holds (LOCAL-bucketsqlite.sums): the page size
// then each page's snapshot.PageChecksum, 8 bytes big-endian each. A
// restart whose working copy is ahead of the bucket (a crash, a failed
// final flush) reads it back and ships one delta of the pages that differ
// (logSync.diff) instead of a new base.
//
// It is written after each flush, only where it changed (a few entries
// for a small delta), and never synced: it is trusted only when the XOR
// of its sums is the image checksum the sync record holds, so a file cut
// short, out of date or damaged is simply not used, and the restart
// uploads a base as it would without it.
type pageSums struct {
	path string
	f    *os.File
	// whole reports that the file holds the image as of the last write;
	// after an error the next write rewrites all of it.
	whole  bool
	warned bool
}

const sumsHeader = 8

func sumsPath(local string) string { return local + "-bucketsqlite.sums" }

// loadSums returns the image the sums file beside local holds when its
// checksum is want (hex, as the sync record holds it); nil otherwise.
func loadSums(local, want string) *snapshot.Image {
	data, err := os.ReadFile(sumsPath(local))
	if err != nil || len(data) < sumsHeader || (len(data)-sumsHeader)%8 != 0 || want == "" {
		return nil
	}
	ps := binary.BigEndian.Uint64(data)
	if ps < snapshot.MinPageSize || ps > snapshot.MaxPageSize || ps&(ps-1) != 0 {
		return nil
	}
	im := &snapshot.Image{PageSize: int(ps), Sums: make([]uint64, (len(data)-sumsHeader)/8)}
	for i := range im.Sums {
		im.Sums[i] = binary.BigEndian.Uint64(data[sumsHeader+8*i:])
		im.Checksum ^= im.Sums[i]
	}
	if hexSum(im.Checksum) != want {
		return nil
	}
	return im
}

// write records im, of which only the pages changed since the last write
// differ (all of it when changed is nil, or after a failed write).
func (s *pageSums) write(im *snapshot.Image, changed []snapshot.Page) error {
	if s == nil {
		return nil
	}
	err := s.writeAt(im, changed)
	s.whole = err == nil
	return err
}

func (s *pageSums) writeAt(im *snapshot.Image, changed []snapshot.Page) error {
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		s.f, s.whole = f, false
	}
	var b [8]byte
	put := func(off int64, v uint64) error {
		binary.BigEndian.PutUint64(b[:], v)
		_, err := s.f.WriteAt(b[:], off)
		return err
	}
	if changed == nil || !s.whole {
		buf := make([]byte, sumsHeader+8*len(im.Sums))
		binary.BigEndian.PutUint64(buf, uint64(im.PageSize))
		for i, v := range im.Sums {
			binary.BigEndian.PutUint64(buf[sumsHeader+8*i:], v)
		}
		if _, err := s.f.WriteAt(buf, 0); err != nil {
			return err
		}
	} else {
		for _, p := range changed {
			if int(p.No) <= len(im.Sums) {
				if err := put(sumsHeader+8*int64(p.No-1), im.Sums[p.No-1]); err != nil {
					return err
				}
			}
		}
	}
	return s.f.Truncate(sumsHeader + 8*int64(len(im.Sums)))
}

// recorded writes im (see write), and logs a failure once: without the
// file a restart ahead of the bucket uploads a base, nothing worse.
func (l *logSync) recorded(changed []snapshot.Page) {
	if l.sums == nil || l.im == nil {
		return
	}
	if err := l.sums.write(l.im, changed); err != nil && !l.sums.warned {
		l.sums.warned = true
		l.log.Warn("bucketsqlite: cannot record the page checksums beside the working copy", "path", l.sums.path, "err", err)
	}
}

func (s *pageSums) close() {
	if s != nil && s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
