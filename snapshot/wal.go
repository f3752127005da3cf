package snapshot

// Reading committed frames from a SQLite WAL file, for incremental sync.
//
// The format (sqlite.org/walformat.html, fileformat2.html#walformat) as
// SQLite 3.5x's walIndexRecover and walDecodeFrame apply it:
//
//   - a 32-byte header: magic (0x377f0682: checksums over little-endian
//     words, 0x377f0683: big-endian), version 3007000, page size (a power
//     of two in [512, 65536], stored as is: 65536 is 65536 here, unlike the
//     database header), checkpoint sequence, salt-1, salt-2, and a checksum
//     of the first 24 bytes. A header failing any check means "no WAL
//     content" to SQLite.
//   - frames of a 24-byte header (page number, database size in pages after
//     the commit for a commit frame else 0, salt-1, salt-2, cumulative
//     checksum) and one page. A frame is valid only if its salts equal the
//     header's, its page number is not 0, and its checksum (seeded with
//     the previous frame's, or the header's for frame 1) matches. SQLite
//     stops at the first invalid frame; frames after the last valid commit
//     frame are not data.
//
// All header fields are big-endian; only the checksum's input words follow
// the magic's byte order.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
)

const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
	walMagicLE         = 0x377f0682
	walMagicBE         = 0x377f0683
	walFormatVersion   = 3007000
	walMinPageSize     = 512
	walMaxPageSize     = 65536
)

// walReadBlock is the size of ReadWAL's read buffer (rounded down to whole
// frames, at least one). A variable so that tests can make transactions
// span blocks.
var walReadBlock = 4 << 20

// walBuffers recycles ReadWAL's read buffers between calls.
var walBuffers sync.Pool // of *[]byte

// walSlabBytes caps the slabs ReadWAL allocates page images from: the
// pages it returns are capacity-limited sub-slices of slabs that start at
// one page and double up to this size (at least one page), so that at most
// min(pages returned, this size) is allocated and unused.
const walSlabBytes = 256 << 10

// WALPosition is how far a WAL has been read: the WAL generation (salts)
// and the frames consumed, with the cumulative checksum after the last
// consumed frame, so that reading can resume mid-file.
type WALPosition struct {
	Salt1, Salt2         uint32
	Frames               uint32 // frames consumed; 0: none (then the checksum seed is the header's)
	Checksum1, Checksum2 uint32
}

// WALChanges is what ReadWAL found.
type WALChanges struct {
	Pages    map[uint32][]byte // latest image of each page written by the committed frames read (copies, safe to keep)
	Commit   uint32            // database size in pages after the last commit read; 0 when no commit was read
	Frames   uint32            // committed frames read
	Next     WALPosition       // pass to the next ReadWAL
	PageSize int
}

// ErrWALReset means the WAL is not the generation pos was read from (its
// salts differ, or it is shorter than pos says): it was restarted or
// truncated by a checkpoint, and frames after pos may have been lost. The
// caller must fall back (a full diff or a new base).
var ErrWALReset = errors.New("snapshot: the WAL was reset since it was last read")

// walHeader is a parsed, valid WAL header.
type walHeader struct {
	bigEndian            bool // checksum words are big-endian
	pageSize             int
	salt1, salt2         uint32
	checksum1, checksum2 uint32
}

// walParseHeader returns the header in b (32 bytes) and whether SQLite
// would accept it.
func walParseHeader(b []byte) (walHeader, bool) {
	if len(b) < walHeaderSize {
		return walHeader{}, false
	}
	be := binary.BigEndian
	magic := be.Uint32(b[0:])
	if magic != walMagicLE && magic != walMagicBE {
		return walHeader{}, false
	}
	h := walHeader{
		bigEndian: magic == walMagicBE,
		salt1:     be.Uint32(b[16:]),
		salt2:     be.Uint32(b[20:]),
		checksum1: be.Uint32(b[24:]),
		checksum2: be.Uint32(b[28:]),
	}
	if be.Uint32(b[4:]) != walFormatVersion {
		return walHeader{}, false
	}
	size := be.Uint32(b[8:])
	if size < walMinPageSize || size > walMaxPageSize || size&(size-1) != 0 {
		return walHeader{}, false
	}
	h.pageSize = int(size)
	if c1, c2 := walChecksum(h.bigEndian, 0, 0, b[:24]); c1 != h.checksum1 || c2 != h.checksum2 {
		return walHeader{}, false
	}
	return h, true
}

// walChecksum extends the checksum (s0, s1) over b, whose length is a
// multiple of 8: for each pair of 32-bit words x0, x1 in the given byte
// order, s0 += x0 + s1; s1 += x1 + s0.
func walChecksum(bigEndian bool, s0, s1 uint32, b []byte) (uint32, uint32) {
	if bigEndian {
		for ; len(b) >= 32; b = b[32:] {
			s0 = s0 + binary.BigEndian.Uint32(b[0:]) + s1
			s1 = s1 + binary.BigEndian.Uint32(b[4:]) + s0
			s0 = s0 + binary.BigEndian.Uint32(b[8:]) + s1
			s1 = s1 + binary.BigEndian.Uint32(b[12:]) + s0
			s0 = s0 + binary.BigEndian.Uint32(b[16:]) + s1
			s1 = s1 + binary.BigEndian.Uint32(b[20:]) + s0
			s0 = s0 + binary.BigEndian.Uint32(b[24:]) + s1
			s1 = s1 + binary.BigEndian.Uint32(b[28:]) + s0
		}
		for ; len(b) >= 8; b = b[8:] {
			s0 = s0 + binary.BigEndian.Uint32(b[0:]) + s1
			s1 = s1 + binary.BigEndian.Uint32(b[4:]) + s0
		}
		return s0, s1
	}
	for ; len(b) >= 32; b = b[32:] {
		s0 = s0 + binary.LittleEndian.Uint32(b[0:]) + s1
		s1 = s1 + binary.LittleEndian.Uint32(b[4:]) + s0
		s0 = s0 + binary.LittleEndian.Uint32(b[8:]) + s1
		s1 = s1 + binary.LittleEndian.Uint32(b[12:]) + s0
		s0 = s0 + binary.LittleEndian.Uint32(b[16:]) + s1
		s1 = s1 + binary.LittleEndian.Uint32(b[20:]) + s0
		s0 = s0 + binary.LittleEndian.Uint32(b[24:]) + s1
		s1 = s1 + binary.LittleEndian.Uint32(b[28:]) + s0
	}
	for ; len(b) >= 8; b = b[8:] {
		s0 = s0 + binary.LittleEndian.Uint32(b[0:]) + s1
		s1 = s1 + binary.LittleEndian.Uint32(b[4:]) + s0
	}
	return s0, s1
}

// walFrameOK checks one frame (header and page) against the WAL header and
// the checksum seed (s0, s1); it returns the frame's page number, commit
// size, the checksum after it, and whether it is valid.
func walFrameOK(h *walHeader, s0, s1 uint32, frame []byte) (pgno, commit, c0, c1 uint32, ok bool) {
	be := binary.BigEndian
	pgno = be.Uint32(frame[0:])
	if pgno == 0 || be.Uint32(frame[8:]) != h.salt1 || be.Uint32(frame[12:]) != h.salt2 {
		return 0, 0, 0, 0, false
	}
	c0, c1 = walChecksum(h.bigEndian, s0, s1, frame[:8])
	c0, c1 = walChecksum(h.bigEndian, c0, c1, frame[walFrameHeaderSize:])
	if c0 != be.Uint32(frame[16:]) || c1 != be.Uint32(frame[20:]) {
		return 0, 0, 0, 0, false
	}
	return pgno, be.Uint32(frame[4:]), c0, c1, true
}

// walReadHeader reads the WAL header of f. ok is false when the file is
// shorter than a header or SQLite would not accept the header.
func walReadHeader(f *os.File) (h walHeader, ok bool, err error) {
	var b [walHeaderSize]byte
	n, err := f.ReadAt(b[:], 0)
	if n < walHeaderSize {
		if err != nil && err != io.EOF {
			return walHeader{}, false, err
		}
		return walHeader{}, false, nil
	}
	h, ok = walParseHeader(b[:])
	return h, ok, nil
}

// WALPageSize returns the page size recorded in the header of the WAL file
// at path. It returns 0 and no error when the file is missing, shorter than
// a header, or has a header SQLite would ignore (a WAL being created).
func WALPageSize(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	h, ok, err := walReadHeader(f)
	if err != nil || !ok {
		return 0, err
	}
	return h.pageSize, nil
}

// walRef is a valid frame whose page image is not in memory: the frame
// number (1-based), its page number, and the checksums before and after it
// so that a re-read can be verified.
type walRef struct {
	frame, pgno    uint32
	seed0, seed1   uint32
	check0, check1 uint32
}

// ReadWAL reads the frames committed after pos from the WAL file at path,
// up to the last valid commit frame, and returns the latest image of every
// page they wrote. A zero pos means "from the start of the current
// generation" (it takes the salts from the header). A missing or empty WAL
// (size < 32), or one with no new committed frame, returns no pages,
// Commit 0, and Next == pos (for a zero pos and an existing header, Next
// carries the header's salts and seed). It reads the file sequentially in
// large blocks (not one syscall per frame), never holds more than the
// changed pages in memory plus one buffer, and never blocks writers (it
// only reads the file; a frame being written shows up as invalid and ends
// the read).
//
// With a non-zero pos, ErrWALReset is returned when the WAL is missing,
// shorter than a header, or has an invalid header; when its salts are not
// pos's; when it is shorter than pos.Frames frames; or when frame
// pos.Frames is not the commit frame pos recorded (its salts or checksum
// differ). It is also returned when frames verified earlier in the same
// call changed before their pages were copied (the WAL was restarted and
// overwritten while being read).
//
// Memory: frames are checked in blocks of walReadBlock (4 MiB) bytes; a
// page image is copied out when its transaction's commit frame is found.
// Frames of a transaction that began in an earlier block are not kept:
// their latest images are read back at the end, in runs, and checked
// against the checksums recorded in the scan. The returned pages share
// slabs of up to 256 KiB (each page's slice is capacity-limited), and the
// read buffer is recycled between calls.
func ReadWAL(path string, pos WALPosition) (*WALChanges, error) {
	none := func(next WALPosition, pageSize int) *WALChanges {
		return &WALChanges{Pages: map[uint32][]byte{}, Next: next, PageSize: pageSize}
	}
	zero := pos == WALPosition{}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if zero {
				return none(pos, 0), nil
			}
			return nil, ErrWALReset
		}
		return nil, fmt.Errorf("snapshot: read WAL: %w", err)
	}
	defer f.Close()

	h, ok, err := walReadHeader(f)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read WAL header: %w", err)
	}
	if !ok {
		if zero {
			return none(pos, 0), nil
		}
		return nil, ErrWALReset
	}
	frameSize := int64(walFrameHeaderSize + h.pageSize)
	if zero {
		pos = WALPosition{Salt1: h.salt1, Salt2: h.salt2, Checksum1: h.checksum1, Checksum2: h.checksum2}
	} else if pos.Salt1 != h.salt1 || pos.Salt2 != h.salt2 {
		return nil, ErrWALReset
	} else if pos.Frames == 0 {
		if pos.Checksum1 != h.checksum1 || pos.Checksum2 != h.checksum2 {
			return nil, ErrWALReset
		}
	} else {
		// Frame pos.Frames must still be the commit frame pos ended at.
		var fh [walFrameHeaderSize]byte
		n, err := f.ReadAt(fh[:], walHeaderSize+int64(pos.Frames-1)*frameSize)
		if n < len(fh) {
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("snapshot: read WAL: %w", err)
			}
			return nil, ErrWALReset
		}
		be := binary.BigEndian
		if be.Uint32(fh[4:]) == 0 || be.Uint32(fh[8:]) != h.salt1 || be.Uint32(fh[12:]) != h.salt2 ||
			be.Uint32(fh[16:]) != pos.Checksum1 || be.Uint32(fh[20:]) != pos.Checksum2 {
			return nil, ErrWALReset
		}
		// The whole frame must be there too.
		if n, err := f.ReadAt(fh[:1], walHeaderSize+int64(pos.Frames)*frameSize-1); n < 1 {
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("snapshot: read WAL: %w", err)
			}
			return nil, ErrWALReset
		}
	}

	out := none(pos, h.pageSize)
	perBlock := max(1, walReadBlock/int(frameSize))
	bufp, _ := walBuffers.Get().(*[]byte)
	if bufp == nil || cap(*bufp) < perBlock*int(frameSize) {
		b := make([]byte, perBlock*int(frameSize))
		bufp = &b
	}
	defer walBuffers.Put(bufp)
	buf := (*bufp)[:perBlock*int(frameSize)]
	var (
		s0, s1   = pos.Checksum1, pos.Checksum2
		frame    = pos.Frames // frames validated so far
		pending  []walRef     // frames of the transaction not committed yet
		refs     = map[uint32]walRef{}
		off      = walHeaderSize + int64(pos.Frames)*frameSize
		lastSize uint32
	)
	var slab []byte
	slabPages := 1
	copyPage := func(pgno uint32, src []byte) {
		if dst, ok := out.Pages[pgno]; ok {
			copy(dst, src)
			return
		}
		if len(slab) == 0 {
			slab = make([]byte, slabPages*h.pageSize)
			slabPages = max(1, min(2*slabPages, walSlabBytes/h.pageSize))
		}
		dst := slab[:h.pageSize:h.pageSize]
		slab = slab[h.pageSize:]
		copy(dst, src)
		out.Pages[pgno] = dst
	}
read:
	for {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("snapshot: read WAL: %w", err)
		}
		first := frame + 1 // the frame at buf[0]
		for i := 0; i+int(frameSize) <= n; i += int(frameSize) {
			fr := buf[i : i+int(frameSize)]
			pgno, commit, c0, c1, ok := walFrameOK(&h, s0, s1, fr)
			if !ok {
				break read
			}
			frame++
			pending = append(pending, walRef{frame: frame, pgno: pgno, seed0: s0, seed1: s1, check0: c0, check1: c1})
			s0, s1 = c0, c1
			if commit == 0 {
				continue
			}
			for _, p := range pending {
				if p.frame >= first {
					at := int(p.frame-first)*int(frameSize) + walFrameHeaderSize
					copyPage(p.pgno, buf[at:at+h.pageSize])
					delete(refs, p.pgno)
				} else {
					// Out of the buffer: re-read at the end. A stale image
					// already in Pages stays there, to be overwritten.
					refs[p.pgno] = p
				}
			}
			pending = pending[:0]
			out.Next = WALPosition{Salt1: h.salt1, Salt2: h.salt2, Frames: frame, Checksum1: c0, Checksum2: c1}
			lastSize = commit
		}
		if n < len(buf) || err == io.EOF {
			break
		}
		off += int64(n)
	}
	pending = nil

	if len(refs) > 0 {
		if err := walLoadRefs(f, &h, refs, buf, copyPage); err != nil {
			return nil, err
		}
	}
	out.Commit = lastSize
	out.Frames = out.Next.Frames - pos.Frames
	return out, nil
}

// walLoadRefs reads the pages of refs back from f in runs of frames that
// fit buf, checking that each frame is still the one validated, and hands
// them to copyPage.
func walLoadRefs(f *os.File, h *walHeader, refs map[uint32]walRef, buf []byte, copyPage func(uint32, []byte)) error {
	frameSize := walFrameHeaderSize + h.pageSize
	perBlock := uint32(len(buf) / frameSize)
	list := make([]walRef, 0, len(refs))
	for _, r := range refs {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b walRef) int { return cmp.Compare(a.frame, b.frame) })
	for len(list) > 0 {
		start := list[0].frame
		k := 1
		for k < len(list) && list[k].frame-start < perBlock {
			k++
		}
		span := int(list[k-1].frame-start+1) * frameSize
		n, err := f.ReadAt(buf[:span], walHeaderSize+int64(start-1)*int64(frameSize))
		if n < span {
			if err != nil && err != io.EOF {
				return fmt.Errorf("snapshot: read WAL: %w", err)
			}
			return ErrWALReset
		}
		for _, r := range list[:k] {
			at := int(r.frame-start) * frameSize
			pgno, _, c0, c1, ok := walFrameOK(h, r.seed0, r.seed1, buf[at:at+frameSize])
			if !ok || pgno != r.pgno || c0 != r.check0 || c1 != r.check1 {
				return ErrWALReset
			}
			copyPage(r.pgno, buf[at+walFrameHeaderSize:at+frameSize])
		}
		list = list[k:]
	}
	return nil
}
