package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// The delta format: see docs/FORMAT.md for the whole specification.
const (
	// DeltaMagic opens every delta object. It never changes; the format
	// version follows it (DeltaVersion).
	DeltaMagic = "BKTSQLD1"

	// DeltaVersion is the delta format version Encode writes and the only
	// one DecodeDelta reads.
	DeltaVersion = 1

	// DeltaHeaderSize is the size of a delta's fixed header, before the
	// writer string.
	DeltaHeaderSize = 105

	// DeltaTrailerSize is the size of a delta's trailer: the SHA-256 of
	// every byte before it.
	DeltaTrailerSize = sha256.Size

	// MaxDeltaSize is the largest page block a delta may hold, uncompressed:
	// its page count times (4 + page size) bytes. Encode refuses a larger
	// delta (write a new base instead) and DecodeDelta refuses to inflate
	// one, so that decoding is bounded in memory.
	MaxDeltaSize = 1 << 30

	// MaxDeltaSeq is the largest sequence number a delta may have: the
	// largest that LogKey writes in LogSeqDigits digits.
	MaxDeltaSeq = 9999999999999999

	// MaxDeltaWriter is the longest Delta.Writer, in bytes.
	MaxDeltaWriter = 255

	// MinPageSize and MaxPageSize bound SQLite's page size, a power of two.
	MinPageSize = 512
	MaxPageSize = 65536

	// MaxPageNo is the largest number of pages a SQLite database can have
	// (and so the largest page number).
	MaxPageNo = 4294967294
)

// Offsets in a delta's fixed header.
const (
	deltaOffVersion  = 8
	deltaOffFlags    = 10
	deltaOffPageSize = 12
	deltaOffSeq      = 16
	deltaOffBaseSeq  = 24
	deltaOffBase     = 32
	deltaOffCommit   = 64
	deltaOffCount    = 68
	deltaOffPre      = 72
	deltaOffPost     = 80
	deltaOffTime     = 88
	deltaOffCompLen  = 96
	deltaOffWriter   = 104
)

// Delta is one flush's changes: the latest image of every page changed
// since the previous flush, and the database's size after it.
type Delta struct {
	// Seq is its sequence number, >= 1 (and at most MaxDeltaSeq).
	Seq uint64
	// Base is the hex SHA-256 (lower case) of the base snapshot the log
	// it belongs to follows (MetaSHA256 of KEY).
	Base string
	// BaseSeq is the sequence the base includes (0 for a first base);
	// below Seq.
	BaseSeq uint64
	// PageSize is the database's page size in bytes.
	PageSize uint32
	// Commit is the database size in pages after the delta.
	Commit uint32
	// PreChecksum is the Image.Checksum of the database before the delta.
	PreChecksum uint64
	// PostChecksum is the Image.Checksum of the database after it.
	PostChecksum uint64
	// Time is when the writer flushed it (UTC, to the nanosecond; Encode
	// refuses a time outside the years 1678 to 2262).
	Time time.Time
	// Writer names the writer, hostname/pid, for operators: valid UTF-8,
	// at most MaxDeltaWriter bytes.
	Writer string
	// Pages are the changed pages: sorted by No, unique, each PageSize
	// bytes, No in 1..Commit, page 1 normalized (NormalizePage1).
	Pages []Page
}

// deltaEncoder and deltaDecoder are shared by every Encode and
// DecodeDelta: EncodeAll and DecodeAll are safe for concurrent use, and
// sharing them keeps small deltas cheap.
var (
	deltaEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			panic(err)
		}
		return e
	})
	deltaDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxDeltaSize),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// deltaValidPageSize reports whether n is a page size SQLite can have.
func deltaValidPageSize(n uint64) bool {
	return n >= MinPageSize && n <= MaxPageSize && bits.OnesCount64(n) == 1
}

// deltaRawSize is the size of a page block of count pages, uncompressed.
func deltaRawSize(count, pageSize uint64) uint64 { return count * (4 + pageSize) }

// deltaMaxCompressed bounds the compressed size of a page block of raw
// bytes: zstd stores incompressible blocks raw, at 3 bytes a 128 KiB
// block plus a frame header and checksum.
func deltaMaxCompressed(raw uint64) uint64 { return raw + raw/64 + 4096 }

// deltaSeqName formats a sequence number as LogKey does.
func deltaSeqName(seq uint64) string { return fmt.Sprintf("%0*d", LogSeqDigits, seq) }

// deltaCheck checks d's invariants (see Delta), but not its time.
func deltaCheck(d *Delta) error {
	if d.Seq < 1 || d.Seq > MaxDeltaSeq {
		return fmt.Errorf("sequence %d is not from 1 to %d", d.Seq, uint64(MaxDeltaSeq))
	}
	if d.BaseSeq >= d.Seq {
		return fmt.Errorf("base sequence %d is not below the delta's sequence %d", d.BaseSeq, d.Seq)
	}
	if err := deltaCheckBase(d.Base); err != nil {
		return err
	}
	if !deltaValidPageSize(uint64(d.PageSize)) {
		return fmt.Errorf("page size %d is not a power of two from %d to %d", d.PageSize, MinPageSize, MaxPageSize)
	}
	if d.Commit < 1 || d.Commit > MaxPageNo {
		return fmt.Errorf("database size %d pages is not from 1 to %d", d.Commit, uint64(MaxPageNo))
	}
	if uint64(len(d.Pages)) > uint64(d.Commit) {
		return fmt.Errorf("%d pages is more than the database's %d", len(d.Pages), d.Commit)
	}
	if raw := deltaRawSize(uint64(len(d.Pages)), uint64(d.PageSize)); raw > MaxDeltaSize {
		return fmt.Errorf("%d pages of %d bytes make %d bytes, more than a delta's %d (write a base instead)",
			len(d.Pages), d.PageSize, raw, MaxDeltaSize)
	}
	if len(d.Writer) > MaxDeltaWriter {
		return fmt.Errorf("writer is %d bytes, more than %d", len(d.Writer), MaxDeltaWriter)
	}
	if !utf8.ValidString(d.Writer) {
		return fmt.Errorf("writer %q is not valid UTF-8", d.Writer)
	}
	var prev uint32
	for i, p := range d.Pages {
		if p.No < 1 || p.No > d.Commit {
			return fmt.Errorf("page %d (#%d) is outside the database's %d pages", p.No, i, d.Commit)
		}
		if p.No <= prev {
			return fmt.Errorf("page %d (#%d) follows page %d: pages must be sorted and unique", p.No, i, prev)
		}
		prev = p.No
		if len(p.Data) != int(d.PageSize) {
			return fmt.Errorf("page %d has %d bytes, not the page size %d", p.No, len(p.Data), d.PageSize)
		}
		if p.No == 1 && !imagePage1Normalized(p.Data) {
			return fmt.Errorf("page 1 is not normalized (bytes 18, 19 are %d, %d, not 1, 1: see NormalizePage1)",
				p.Data[imageWriteVersionOffset], p.Data[imageReadVersionOffset])
		}
	}
	return nil
}

// deltaCheckBase checks that base is a lower-case hex SHA-256.
func deltaCheckBase(base string) error {
	if len(base) != 2*sha256.Size {
		return fmt.Errorf("base %q is not a hex SHA-256 (%d characters, not %d)", base, len(base), 2*sha256.Size)
	}
	for _, c := range []byte(base) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("base %q is not a lower-case hex SHA-256", base)
		}
	}
	return nil
}

// Encode writes d to w in the delta format (pages zstd-compressed; see
// docs/FORMAT.md), checking d's invariants first: a broken one is an error
// that says which, and nothing is written. It returns the number of bytes
// written.
func (d *Delta) Encode(w io.Writer) (int64, error) {
	if err := deltaCheck(d); err != nil {
		return 0, fmt.Errorf("snapshot: delta %s: %w", deltaSeqName(d.Seq), err)
	}
	ns := d.Time.UnixNano()
	if !time.Unix(0, ns).Equal(d.Time) {
		return 0, fmt.Errorf("snapshot: delta %s: time %v cannot be stored (nanoseconds since 1970 in 64 bits: years 1678 to 2262)",
			deltaSeqName(d.Seq), d.Time)
	}
	base, _ := hex.DecodeString(d.Base)

	ps := int(d.PageSize)
	raw := make([]byte, deltaRawSize(uint64(len(d.Pages)), uint64(ps)))
	data := raw[4*len(d.Pages):]
	for i, p := range d.Pages {
		binary.BigEndian.PutUint32(raw[4*i:], p.No)
		copy(data[i*ps:], p.Data)
	}
	var comp []byte
	if len(raw) > 0 {
		comp = deltaEncoder().EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
	}
	if uint64(len(comp)) > deltaMaxCompressed(uint64(len(raw))) {
		return 0, fmt.Errorf("snapshot: delta %s: %d bytes compressed to %d, more than the format allows",
			deltaSeqName(d.Seq), len(raw), len(comp))
	}

	head := make([]byte, DeltaHeaderSize, DeltaHeaderSize+len(d.Writer))
	copy(head, DeltaMagic)
	binary.BigEndian.PutUint16(head[deltaOffVersion:], DeltaVersion)
	binary.BigEndian.PutUint16(head[deltaOffFlags:], 0)
	binary.BigEndian.PutUint32(head[deltaOffPageSize:], d.PageSize)
	binary.BigEndian.PutUint64(head[deltaOffSeq:], d.Seq)
	binary.BigEndian.PutUint64(head[deltaOffBaseSeq:], d.BaseSeq)
	copy(head[deltaOffBase:], base)
	binary.BigEndian.PutUint32(head[deltaOffCommit:], d.Commit)
	binary.BigEndian.PutUint32(head[deltaOffCount:], uint32(len(d.Pages)))
	binary.BigEndian.PutUint64(head[deltaOffPre:], d.PreChecksum)
	binary.BigEndian.PutUint64(head[deltaOffPost:], d.PostChecksum)
	binary.BigEndian.PutUint64(head[deltaOffTime:], uint64(ns))
	binary.BigEndian.PutUint64(head[deltaOffCompLen:], uint64(len(comp)))
	head[deltaOffWriter] = byte(len(d.Writer))
	head = append(head, d.Writer...)

	h := sha256.New()
	h.Write(head)
	h.Write(comp)
	var n int64
	for _, b := range [][]byte{head, comp, h.Sum(nil)} {
		m, err := w.Write(b)
		n += int64(m)
		if err == nil && m < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return n, fmt.Errorf("snapshot: delta %s: writing: %w", deltaSeqName(d.Seq), err)
		}
	}
	return n, nil
}

// deltaCorrupt returns an error matching ErrCorrupt about delta seq (0:
// not known yet).
func deltaCorrupt(seq uint64, format string, args ...any) error {
	what := "delta"
	if seq != 0 {
		what += " " + deltaSeqName(seq)
	}
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, what, fmt.Sprintf(format, args...))
}

// deltaRead reads exactly n bytes of the part named what from r,
// allocating as the bytes arrive rather than all n up front, so that a
// header declaring a huge part cannot make it allocate more than r holds
// (plus a bounded step).
func deltaRead(r io.Reader, n uint64, seq uint64, what string) ([]byte, error) {
	const step = 4 << 20
	buf := make([]byte, 0, min(n, step))
	for uint64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*uint64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		got, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+got]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, deltaCorrupt(seq, "cut short in the %s: %d of its %d bytes", what, len(buf), n)
			}
			return nil, fmt.Errorf("snapshot: delta %s: reading the %s: %w", deltaSeqName(seq), what, err)
		}
	}
	return buf, nil
}

// DecodeDelta reads a whole delta from r, up to its end. Any malformation
// (a wrong magic or version, a truncated or over-long object, a field out
// of range), a mismatch of the object's own SHA-256 trailer, or a broken
// invariant (see Delta) is an error matching ErrCorrupt that says what is
// wrong; an error reading r that is not an early end is returned as such.
//
// It is safe on hostile input: it allocates as the object's bytes arrive,
// inflates the pages only once the trailer matches, and then no more than
// the size the header declares, which is at most MaxDeltaSize. The pages'
// Data share one buffer.
func DecodeDelta(r io.Reader) (*Delta, error) {
	head, err := deltaRead(r, DeltaHeaderSize, 0, "header")
	if err != nil {
		return nil, err
	}
	if string(head[:len(DeltaMagic)]) != DeltaMagic {
		return nil, deltaCorrupt(0, "not a delta: it starts with %q, not %q", head[:len(DeltaMagic)], DeltaMagic)
	}
	if v := binary.BigEndian.Uint16(head[deltaOffVersion:]); v != DeltaVersion {
		return nil, deltaCorrupt(0, "format version %d; this reader knows only version %d", v, DeltaVersion)
	}
	seq := binary.BigEndian.Uint64(head[deltaOffSeq:])
	if seq < 1 || seq > MaxDeltaSeq {
		return nil, deltaCorrupt(0, "sequence %d is not from 1 to %d", seq, uint64(MaxDeltaSeq))
	}
	if f := binary.BigEndian.Uint16(head[deltaOffFlags:]); f != 0 {
		return nil, deltaCorrupt(seq, "unknown flags %#04x", f)
	}
	d := &Delta{
		Seq:          seq,
		Base:         hex.EncodeToString(head[deltaOffBase : deltaOffBase+sha256.Size]),
		BaseSeq:      binary.BigEndian.Uint64(head[deltaOffBaseSeq:]),
		PageSize:     binary.BigEndian.Uint32(head[deltaOffPageSize:]),
		Commit:       binary.BigEndian.Uint32(head[deltaOffCommit:]),
		PreChecksum:  binary.BigEndian.Uint64(head[deltaOffPre:]),
		PostChecksum: binary.BigEndian.Uint64(head[deltaOffPost:]),
		Time:         time.Unix(0, int64(binary.BigEndian.Uint64(head[deltaOffTime:]))).UTC(),
	}
	count := uint64(binary.BigEndian.Uint32(head[deltaOffCount:]))
	compLen := binary.BigEndian.Uint64(head[deltaOffCompLen:])
	if d.BaseSeq >= d.Seq {
		return nil, deltaCorrupt(seq, "base sequence %d is not below the delta's", d.BaseSeq)
	}
	if !deltaValidPageSize(uint64(d.PageSize)) {
		return nil, deltaCorrupt(seq, "page size %d is not a power of two from %d to %d", d.PageSize, MinPageSize, MaxPageSize)
	}
	if d.Commit < 1 || d.Commit > MaxPageNo {
		return nil, deltaCorrupt(seq, "database size %d pages is not from 1 to %d", d.Commit, uint64(MaxPageNo))
	}
	if count > uint64(d.Commit) {
		return nil, deltaCorrupt(seq, "%d pages is more than the database's %d", count, d.Commit)
	}
	raw := deltaRawSize(count, uint64(d.PageSize))
	if raw > MaxDeltaSize {
		return nil, deltaCorrupt(seq, "%d pages of %d bytes make %d bytes, more than a delta's %d", count, d.PageSize, raw, MaxDeltaSize)
	}
	if (raw == 0) != (compLen == 0) || compLen > deltaMaxCompressed(raw) {
		return nil, deltaCorrupt(seq, "%d compressed bytes cannot hold %d pages of %d bytes", compLen, count, d.PageSize)
	}

	writer, err := deltaRead(r, uint64(head[deltaOffWriter]), seq, "writer")
	if err != nil {
		return nil, err
	}
	comp, err := deltaRead(r, compLen, seq, "pages")
	if err != nil {
		return nil, err
	}
	trailer, err := deltaRead(r, DeltaTrailerSize, seq, "trailer")
	if err != nil {
		return nil, err
	}
	var extra [1]byte
	if n, err := io.ReadFull(r, extra[:]); n > 0 {
		return nil, deltaCorrupt(seq, "bytes follow the trailer")
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("snapshot: delta %s: reading past the trailer: %w", deltaSeqName(seq), err)
	}
	h := sha256.New()
	h.Write(head)
	h.Write(writer)
	h.Write(comp)
	if sum := h.Sum(nil); !bytes.Equal(sum, trailer) {
		return nil, deltaCorrupt(seq, "SHA-256 %x of its content does not match its trailer %x", sum, trailer)
	}
	if !utf8.Valid(writer) {
		return nil, deltaCorrupt(seq, "writer %q is not valid UTF-8", writer)
	}
	d.Writer = string(writer)

	if raw > 0 {
		block, err := deltaDecoder().DecodeAll(comp, make([]byte, 0, raw))
		if err != nil {
			return nil, deltaCorrupt(seq, "inflating the pages: %v", err)
		}
		if uint64(len(block)) != raw {
			return nil, deltaCorrupt(seq, "pages inflate to %d bytes, not the %d of %d pages", len(block), raw, count)
		}
		ps := int(d.PageSize)
		data := block[4*count:]
		d.Pages = make([]Page, count)
		for i := range d.Pages {
			d.Pages[i] = Page{
				No:   binary.BigEndian.Uint32(block[4*i:]),
				Data: data[i*ps : (i+1)*ps : (i+1)*ps],
			}
		}
	}
	if err := deltaCheck(d); err != nil {
		return nil, deltaCorrupt(seq, "%v", err)
	}
	return d, nil
}

// DeltaFile is the database file ApplyDelta writes: an *os.File, say.
type DeltaFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
}

// ApplyDelta applies d to the database file f whose Image is im. It checks
// d.PageSize == im.PageSize and im.Checksum == d.PreChecksum (else an
// error matching ErrCorrupt naming the sequence: a delta is missing, or
// the log follows another base), then that the delta's pages leave no
// hole and that the resulting image checksum equals d.PostChecksum (else
// ErrCorrupt). Only then does it write each page at (No-1)*PageSize,
// truncate f to Commit*PageSize and update im.
//
// So a delta refused leaves f and im as they were. An error from f itself
// (writing, truncating) leaves f in part written and im as it was: neither
// describes the other any more, and the caller should start again from a
// base.
func ApplyDelta(f DeltaFile, im *Image, d *Delta) error {
	name := deltaSeqName(d.Seq)
	if int(d.PageSize) != im.PageSize {
		return deltaCorrupt(d.Seq, "page size %d, but the database's is %d", d.PageSize, im.PageSize)
	}
	if im.Checksum != d.PreChecksum {
		return deltaCorrupt(d.Seq, "follows image checksum %016x but the database's is %016x "+
			"(a delta before it is missing or was applied twice, or the log follows another base)",
			d.PreChecksum, im.Checksum)
	}
	plan, err := im.imagePlan(d.Pages, d.Commit)
	if err != nil {
		return deltaCorrupt(d.Seq, "%v", err)
	}
	if plan.checksum != d.PostChecksum {
		return deltaCorrupt(d.Seq, "applying it would give image checksum %016x, not the %016x it records",
			plan.checksum, d.PostChecksum)
	}
	ps := int64(im.PageSize)
	for _, p := range plan.pages {
		if _, err := f.WriteAt(p.Data, int64(p.No-1)*ps); err != nil {
			return fmt.Errorf("snapshot: delta %s: writing page %d: %w", name, p.No, err)
		}
	}
	if err := f.Truncate(int64(d.Commit) * ps); err != nil {
		return fmt.Errorf("snapshot: delta %s: truncating to %d pages: %w", name, d.Commit, err)
	}
	im.imageApply(plan)
	return nil
}
