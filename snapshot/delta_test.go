package snapshot_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	_ "github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/snapshot"
)

const deltaTestBase = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// deltaTestDelta returns a valid delta of n pages of pageSize bytes in a
// database of commit pages, page 1 included when n > 0.
func deltaTestDelta(n int, pageSize int, commit uint32) *snapshot.Delta {
	d := &snapshot.Delta{
		Seq:          7,
		Base:         deltaTestBase,
		BaseSeq:      3,
		PageSize:     uint32(pageSize),
		Commit:       commit,
		PreChecksum:  0x0123456789abcdef,
		PostChecksum: 0xfedcba9876543210,
		Time:         time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.UTC),
		Writer:       "host.example/4242",
	}
	file := imageTestFile(uint64(n), n, pageSize)
	for i := range n {
		no := uint32(1 + i*int(commit)/max(n, 1))
		data := file[i*pageSize : (i+1)*pageSize]
		if no == 1 {
			snapshot.NormalizePage1(data)
		}
		// Half of each page zero, as in a real database, so it compresses.
		clear(data[pageSize/2:])
		d.Pages = append(d.Pages, snapshot.Page{No: no, Data: data})
	}
	return d
}

func deltaEncode(t testing.TB, d *snapshot.Delta) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := d.Encode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Encode reports %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func deltaEqual(a, b *snapshot.Delta) bool {
	if a.Seq != b.Seq || a.Base != b.Base || a.BaseSeq != b.BaseSeq || a.PageSize != b.PageSize ||
		a.Commit != b.Commit || a.PreChecksum != b.PreChecksum || a.PostChecksum != b.PostChecksum ||
		!a.Time.Equal(b.Time) || a.Writer != b.Writer || len(a.Pages) != len(b.Pages) {
		return false
	}
	for i := range a.Pages {
		if a.Pages[i].No != b.Pages[i].No || !bytes.Equal(a.Pages[i].Data, b.Pages[i].Data) {
			return false
		}
	}
	return true
}

func TestDeltaRoundTrip(t *testing.T) {
	long := deltaTestDelta(2, 512, 9)
	long.Writer = strings.Repeat("é", 127) + "x"
	epoch := deltaTestDelta(1, 1024, 1)
	epoch.Time = time.Unix(0, 0)
	epoch.Seq, epoch.BaseSeq = snapshot.MaxDeltaSeq, snapshot.MaxDeltaSeq-1
	for name, d := range map[string]*snapshot.Delta{
		"no pages":             deltaTestDelta(0, 4096, 5),
		"one page":             deltaTestDelta(1, 512, 1),
		"many pages":           deltaTestDelta(300, 4096, 1000),
		"every page":           deltaTestDelta(64, 1024, 64),
		"largest pages":        deltaTestDelta(3, 65536, 3),
		"longest writer":       long,
		"epoch, last sequence": epoch,
	} {
		enc := deltaEncode(t, d)
		got, err := snapshot.DecodeDelta(bytes.NewReader(enc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !deltaEqual(got, d) {
			t.Errorf("%s: decoded %+v, want %+v", name, got, d)
		}
		if got.Time.Location() != time.UTC {
			t.Errorf("%s: time %v is not UTC", name, got.Time)
		}
		if again := deltaEncode(t, got); !bytes.Equal(again, enc) {
			t.Errorf("%s: re-encoding the decoded delta gives other bytes", name)
		}
	}
}

// deltaSign replaces obj's trailer with the SHA-256 of the rest.
func deltaSign(obj []byte) []byte {
	body := obj[:len(obj)-sha256.Size]
	sum := sha256.Sum256(body)
	return append(slices.Clone(body), sum[:]...)
}

// deltaBuild writes a delta by hand, from the layout in docs/FORMAT.md,
// with any header values and page block: a reader independent of Encode.
type deltaBuild struct {
	magic          string
	version, flags uint16
	pageSize       uint32
	seq, baseSeq   uint64
	base           [32]byte
	commit, count  uint32
	pre, post      uint64
	time           int64
	writer         string
	block          []byte // uncompressed, nil for none
	comp           []byte // compressed, overrides block when set
	compLen        *uint64
}

func (b deltaBuild) bytes() []byte {
	comp := b.comp
	if comp == nil && b.block != nil {
		enc, _ := zstd.NewWriter(nil)
		comp = enc.EncodeAll(b.block, nil)
	}
	compLen := uint64(len(comp))
	if b.compLen != nil {
		compLen = *b.compLen
	}
	var h []byte
	h = append(h, b.magic...)
	h = binary.BigEndian.AppendUint16(h, b.version)
	h = binary.BigEndian.AppendUint16(h, b.flags)
	h = binary.BigEndian.AppendUint32(h, b.pageSize)
	h = binary.BigEndian.AppendUint64(h, b.seq)
	h = binary.BigEndian.AppendUint64(h, b.baseSeq)
	h = append(h, b.base[:]...)
	h = binary.BigEndian.AppendUint32(h, b.commit)
	h = binary.BigEndian.AppendUint32(h, b.count)
	h = binary.BigEndian.AppendUint64(h, b.pre)
	h = binary.BigEndian.AppendUint64(h, b.post)
	h = binary.BigEndian.AppendUint64(h, uint64(b.time))
	h = binary.BigEndian.AppendUint64(h, compLen)
	h = append(h, byte(len(b.writer)))
	h = append(h, b.writer...)
	h = append(h, comp...)
	sum := sha256.Sum256(h)
	return append(h, sum[:]...)
}

// deltaBlock is a page block: the numbers, then the pages.
func deltaBlock(pageSize int, nos ...uint32) []byte {
	var b []byte
	for _, no := range nos {
		b = binary.BigEndian.AppendUint32(b, no)
	}
	for _, no := range nos {
		p := make([]byte, pageSize)
		p[0] = byte(no)
		if no == 1 {
			snapshot.NormalizePage1(p)
		}
		b = append(b, p...)
	}
	return b
}

func deltaGoodBuild() deltaBuild {
	return deltaBuild{
		magic: "BKTSQLD1", version: 1, pageSize: 512, seq: 5, baseSeq: 2, base: [32]byte{1, 2, 3},
		commit: 4, count: 2, pre: 11, post: 12, time: 1700000000123456789, writer: "w/1",
		block: deltaBlock(512, 1, 3),
	}
}

func TestDeltaLayout(t *testing.T) {
	// A delta written from the specification alone decodes.
	d, err := snapshot.DecodeDelta(bytes.NewReader(deltaGoodBuild().bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := &snapshot.Delta{
		Seq: 5, Base: fmt.Sprintf("%x", [32]byte{1, 2, 3}), BaseSeq: 2, PageSize: 512, Commit: 4,
		PreChecksum: 11, PostChecksum: 12, Time: time.Unix(0, 1700000000123456789), Writer: "w/1",
	}
	block := deltaBlock(512, 1, 3)
	want.Pages = []snapshot.Page{{No: 1, Data: block[8 : 8+512]}, {No: 3, Data: block[8+512:]}}
	if !deltaEqual(d, want) {
		t.Errorf("decoded %+v, want %+v", d, want)
	}
	// And Encode writes the same header.
	enc := deltaEncode(t, want)
	hand := deltaGoodBuild().bytes()
	if !bytes.Equal(enc[:snapshot.DeltaHeaderSize+3], hand[:snapshot.DeltaHeaderSize+3]) {
		t.Errorf("Encode's header\n%x\ndiffers from the specification's\n%x",
			enc[:snapshot.DeltaHeaderSize+3], hand[:snapshot.DeltaHeaderSize+3])
	}
}

// deltaWantCorrupt checks that DecodeDelta refuses obj with ErrCorrupt,
// and an error that mentions want.
func deltaWantCorrupt(t *testing.T, name string, obj []byte, want string) {
	t.Helper()
	d, err := snapshot.DecodeDelta(bytes.NewReader(obj))
	if !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("%s: DecodeDelta = %v, %v; want ErrCorrupt", name, d, err)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want it to mention %q", name, err, want)
	}
}

func TestDeltaEveryByteDamaged(t *testing.T) {
	d := deltaTestDelta(2, 512, 3)
	obj := deltaEncode(t, d)
	t.Logf("%d-byte delta", len(obj))
	for i := range obj {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := slices.Clone(obj)
			bad[i] ^= mask
			deltaWantCorrupt(t, fmt.Sprintf("byte %d ^ %#x", i, mask), bad, "")
		}
	}
	for n := range len(obj) {
		deltaWantCorrupt(t, fmt.Sprintf("cut to %d bytes", n), obj[:n], "")
	}
	deltaWantCorrupt(t, "a byte appended", append(slices.Clone(obj), 0), "follow the trailer")
	deltaWantCorrupt(t, "a delta appended", append(slices.Clone(obj), obj...), "follow the trailer")
	deltaWantCorrupt(t, "empty", nil, "cut short in the header")
}

func TestDeltaCorruptWithValidTrailer(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name string
		edit func(b *deltaBuild)
		want string
	}{
		{"magic", func(b *deltaBuild) { b.magic = "SQLite f" }, "not a delta"},
		{"version 0", func(b *deltaBuild) { b.version = 0 }, "version 0"},
		{"version 2", func(b *deltaBuild) { b.version = 2 }, "version 2"},
		{"flags", func(b *deltaBuild) { b.flags = 1 }, "flags"},
		{"sequence 0", func(b *deltaBuild) { b.seq = 0 }, "sequence 0"},
		{"sequence too large", func(b *deltaBuild) { b.seq = 1e16 }, "sequence"},
		{"base sequence = sequence", func(b *deltaBuild) { b.baseSeq = 5 }, "base sequence"},
		{"page size 1000", func(b *deltaBuild) { b.pageSize = 1000 }, "page size 1000"},
		{"page size 256", func(b *deltaBuild) { b.pageSize = 256 }, "page size 256"},
		{"page size 128 KiB", func(b *deltaBuild) { b.pageSize = 131072 }, "page size 131072"},
		{"page size 0", func(b *deltaBuild) { b.pageSize = 0 }, "page size 0"},
		{"commit 0", func(b *deltaBuild) { b.commit = 0; b.count = 0; b.block = nil }, "database size 0"},
		{"commit 2^32-1", func(b *deltaBuild) { b.commit = 1<<32 - 1 }, "database size"},
		{"more pages than commit", func(b *deltaBuild) { b.commit = 1 }, "more than the database's"},
		{"huge page count", func(b *deltaBuild) { b.count, b.commit, b.pageSize = 1<<32-2, 1<<32-2, 65536 }, "more than a delta's"},
		{"count without pages", func(b *deltaBuild) { b.block = nil }, "cannot hold"},
		{"pages without count", func(b *deltaBuild) { b.count = 0 }, "cannot hold"},
		{"huge compressed length", func(b *deltaBuild) { b.compLen = u64(1 << 40) }, "cannot hold"},
		{"compressed length too long", func(b *deltaBuild) { b.compLen = u64(2000) }, "cut short in the pages"},
		{"page block too short", func(b *deltaBuild) { b.count = 3; b.commit = 4 }, "inflate"},
		{"page block too long", func(b *deltaBuild) { b.count = 1 }, "inflat"},
		{"not zstd", func(b *deltaBuild) { b.comp = make([]byte, 100) }, "inflating"},
		{"two frames", func(b *deltaBuild) {
			enc, _ := zstd.NewWriter(nil)
			b.comp = enc.EncodeAll(b.block, enc.EncodeAll(b.block, nil))
		}, "inflating"},
		{"pages out of order", func(b *deltaBuild) { b.block = deltaBlock(512, 3, 1) }, "sorted"},
		{"page twice", func(b *deltaBuild) { b.block = deltaBlock(512, 3, 3) }, "sorted"},
		{"page 0", func(b *deltaBuild) { b.block = deltaBlock(512, 0, 3) }, "page 0"},
		{"page past commit", func(b *deltaBuild) { b.block = deltaBlock(512, 1, 5) }, "page 5"},
		{"page 1 not normalized", func(b *deltaBuild) { b.block[8+18] = 2 }, "not normalized"},
		{"writer not UTF-8", func(b *deltaBuild) { b.writer = "\xff\xfe" }, "UTF-8"},
	} {
		b := deltaGoodBuild()
		tc.edit(&b)
		deltaWantCorrupt(t, tc.name, b.bytes(), tc.want)
	}
}

func TestDeltaEncodeRefuses(t *testing.T) {
	unnormalized := deltaTestDelta(2, 512, 4)
	unnormalized.Pages[0].Data[19] = 2
	huge := deltaTestDelta(0, 65536, 1<<20)
	huge.Pages = make([]snapshot.Page, snapshot.MaxDeltaSize/(4+65536)+1)
	for i := range huge.Pages {
		huge.Pages[i].No = uint32(i + 1)
	}
	for _, tc := range []struct {
		name string
		edit func(d *snapshot.Delta)
		want string
	}{
		{"sequence 0", func(d *snapshot.Delta) { d.Seq, d.BaseSeq = 0, 0 }, "sequence 0"},
		{"sequence too large", func(d *snapshot.Delta) { d.Seq = snapshot.MaxDeltaSeq + 1 }, "sequence"},
		{"base sequence = sequence", func(d *snapshot.Delta) { d.BaseSeq = d.Seq }, "base sequence"},
		{"base sequence > sequence", func(d *snapshot.Delta) { d.BaseSeq = d.Seq + 1 }, "base sequence"},
		{"no base", func(d *snapshot.Delta) { d.Base = "" }, "base"},
		{"base upper case", func(d *snapshot.Delta) { d.Base = strings.ToUpper(d.Base) }, "lower-case"},
		{"base not hex", func(d *snapshot.Delta) { d.Base = strings.Repeat("g", 64) }, "hex"},
		{"page size 1000", func(d *snapshot.Delta) { d.PageSize = 1000 }, "page size 1000"},
		{"page size 256", func(d *snapshot.Delta) { d.PageSize = 256 }, "page size 256"},
		{"commit 0", func(d *snapshot.Delta) { d.Commit, d.Pages = 0, nil }, "database size 0"},
		{"commit too large", func(d *snapshot.Delta) { d.Commit = 1<<32 - 1 }, "database size"},
		{"more pages than commit", func(d *snapshot.Delta) { d.Commit = 1 }, "more than the database's"},
		{"page past commit", func(d *snapshot.Delta) { d.Commit = 3; d.Pages[1].No = 4 }, "page 4"},
		{"page 0", func(d *snapshot.Delta) { d.Pages[0].No = 0 }, "page 0"},
		{"unsorted", func(d *snapshot.Delta) { d.Pages[0], d.Pages[1] = d.Pages[1], d.Pages[0] }, "sorted"},
		{"duplicate", func(d *snapshot.Delta) { d.Pages[1].No = d.Pages[0].No }, "sorted"},
		{"short page", func(d *snapshot.Delta) { d.Pages[1].Data = d.Pages[1].Data[:511] }, "511 bytes"},
		{"long page", func(d *snapshot.Delta) { d.Pages[1].Data = append(d.Pages[1].Data, 0) }, "513 bytes"},
		{"page 1 not normalized", func(d *snapshot.Delta) { *d = *unnormalized }, "not normalized"},
		{"writer too long", func(d *snapshot.Delta) { d.Writer = strings.Repeat("x", 256) }, "256 bytes"},
		{"writer not UTF-8", func(d *snapshot.Delta) { d.Writer = "\xff" }, "UTF-8"},
		{"no time", func(d *snapshot.Delta) { d.Time = time.Time{} }, "time"},
		{"time after 2262", func(d *snapshot.Delta) { d.Time = time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		{"too large", func(d *snapshot.Delta) { *d = *huge }, "write a base instead"},
	} {
		d := deltaTestDelta(2, 512, 4)
		tc.edit(d)
		var buf bytes.Buffer
		n, err := d.Encode(&buf)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Encode = %v, want an error about %q", tc.name, err, tc.want)
		}
		if n != 0 || buf.Len() != 0 {
			t.Errorf("%s: Encode wrote %d bytes (says %d) before refusing", tc.name, buf.Len(), n)
		}
	}
}

type deltaFailWriter struct{ after int }

func (w *deltaFailWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestDeltaEncodeWriteError(t *testing.T) {
	n, err := deltaTestDelta(2, 512, 4).Encode(&deltaFailWriter{after: 50})
	if err == nil || !strings.Contains(err.Error(), "disk full") || n != 50 {
		t.Errorf("Encode to a failing writer = %d, %v; want 50, disk full", n, err)
	}
}

type deltaFailReader struct{ r io.Reader }

func (r deltaFailReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestDeltaDecodeReadError(t *testing.T) {
	obj := deltaEncode(t, deltaTestDelta(2, 512, 4))
	_, err := snapshot.DecodeDelta(deltaFailReader{bytes.NewReader(obj[:200])})
	if err == nil || errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("DecodeDelta from a failing reader: %v; want the read error, not ErrCorrupt", err)
	}
}

// deltaDB opens a go-sqlite3 database at path in rollback-journal mode.
func deltaDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=DELETE")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func deltaExec(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func deltaRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deltaDiff builds the delta that turns the database file from into to:
// to's pages that differ from from's or lie past its end.
func deltaDiff(t *testing.T, seq uint64, from, to []byte, pageSize int) *snapshot.Delta {
	t.Helper()
	d := &snapshot.Delta{
		Seq: seq, Base: deltaTestBase, PageSize: uint32(pageSize), Commit: uint32(len(to) / pageSize),
		PreChecksum:  imageOf(t, from, pageSize).Checksum,
		PostChecksum: imageOf(t, to, pageSize).Checksum,
		Time:         time.Now(), Writer: "test/1",
	}
	for off := 0; off < len(to); off += pageSize {
		page := to[off : off+pageSize]
		if off+pageSize <= len(from) && bytes.Equal(page, from[off:off+pageSize]) {
			continue
		}
		page = slices.Clone(page)
		if off == 0 {
			snapshot.NormalizePage1(page)
		}
		d.Pages = append(d.Pages, snapshot.Page{No: uint32(off/pageSize + 1), Data: page})
	}
	return d
}

// deltaVersions returns four versions of one rollback-journal database
// file: the first, after a small change, after a shrink (VACUUM) and after
// a growth.
func deltaVersions(t *testing.T, pageSize int) [][]byte {
	t.Helper()
	origPath := filepath.Join(t.TempDir(), "orig.db")
	db := deltaDB(t, origPath)
	deltaExec(t, db,
		fmt.Sprintf("PRAGMA page_size=%d", pageSize),
		"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE INDEX tv ON t(v)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000) "+
			"INSERT INTO t(v) SELECT printf('%d-%s', i, hex(randomblob(60))) FROM n")
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	v0 := deltaRead(t, origPath)
	// A small change: a few pages.
	deltaExec(t, db, "UPDATE t SET v = 'changed' WHERE id = 1500")
	vSmall := deltaRead(t, origPath)
	// Shrink: delete most rows, update and insert some, VACUUM.
	deltaExec(t, db,
		"DELETE FROM t WHERE id % 4 != 0",
		"UPDATE t SET v = 'updated ' || v WHERE id % 20 = 0",
		"INSERT INTO t(v) VALUES ('new one'), ('new two')",
		"VACUUM")
	v1 := deltaRead(t, origPath)
	// Grow: insert a lot.
	deltaExec(t, db,
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 4000) "+
			"INSERT INTO t(v) SELECT printf('grown %d-%s', i, hex(randomblob(40))) FROM n")
	v2 := deltaRead(t, origPath)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(v1) >= len(v0) || len(v2) <= len(v1) {
		t.Fatalf("sizes %d, %d, %d: want the database to shrink then grow", len(v0), len(v1), len(v2))
	}
	return [][]byte{v0, vSmall, v1, v2}
}

func TestDeltaApplySQLite(t *testing.T) {
	const pageSize = 1024
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	vs := deltaVersions(t, pageSize)
	v0, vSmall, v1, v2 := vs[0], vs[1], vs[2], vs[3]
	if err := os.WriteFile(copyPath, v0, 0o600); err != nil {
		t.Fatal(err)
	}

	f, err := os.OpenFile(copyPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := snapshot.ImageFromFile(f, int64(len(v0)), pageSize)
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct{ from, to []byte }{{v0, vSmall}, {vSmall, v1}, {v1, v2}} {
		d := deltaDiff(t, uint64(i+1), step.from, step.to, pageSize)
		d, err := snapshot.DecodeDelta(bytes.NewReader(deltaEncode(t, d)))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("delta %d: %d of %d pages", d.Seq, len(d.Pages), d.Commit)
		if err := snapshot.ApplyDelta(f, im, d); err != nil {
			t.Fatalf("delta %d: %v", d.Seq, err)
		}
		got := deltaRead(t, copyPath)
		if !bytes.Equal(got, step.to) {
			t.Fatalf("delta %d: the copy (%d bytes) differs from the original (%d bytes)", d.Seq, len(got), len(step.to))
		}
		fresh := imageOf(t, got, pageSize)
		if im.Checksum != d.PostChecksum || im.Checksum != fresh.Checksum || !slices.Equal(im.Sums, fresh.Sums) {
			t.Fatalf("delta %d: image after apply %x, post checksum %x, ImageFromFile of the result %x",
				d.Seq, im.Checksum, d.PostChecksum, fresh.Checksum)
		}
	}

	// The copy opens as the same database.
	cp := deltaDB(t, copyPath)
	defer cp.Close()
	var check string
	var n int
	if err := cp.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the copy: %q, %v", check, err)
	}
	if err := cp.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 750+2+4000 {
		t.Errorf("the copy has %d rows (%v), want %d", n, err, 750+2+4000)
	}
}

func TestDeltaApplyRefused(t *testing.T) {
	const ps = 512
	from := imageTestFile(40, 5, ps)
	snapshot.NormalizePage1(from)
	to := slices.Clone(from[:4*ps])
	copy(to[ps:], imageTestFile(41, 1, ps))
	good := deltaDiff(t, 9, from, to, ps)
	for _, tc := range []struct {
		name string
		edit func(d *snapshot.Delta)
		want string
	}{
		{"pre-checksum mismatch", func(d *snapshot.Delta) { d.PreChecksum++ }, "0000000000000009: follows image checksum"},
		{"post-checksum mismatch", func(d *snapshot.Delta) { d.PostChecksum++ }, "not the"},
		{"page size mismatch", func(d *snapshot.Delta) { d.PageSize = 1024 }, "page size 1024"},
		{"hole", func(d *snapshot.Delta) { d.Commit = 7 }, "page 6 is not given"},
	} {
		path := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(path, from, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		im := imageOf(t, from, ps)
		before := im.Clone()
		d := *good
		tc.edit(&d)
		err = snapshot.ApplyDelta(f, im, &d)
		f.Close()
		if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrCorrupt mentioning %q", tc.name, err, tc.want)
		}
		if !bytes.Equal(deltaRead(t, path), from) {
			t.Errorf("%s: a refused delta changed the file", tc.name)
		}
		if im.Checksum != before.Checksum || !slices.Equal(im.Sums, before.Sums) {
			t.Errorf("%s: a refused delta changed the image", tc.name)
		}
	}
}

func FuzzDecodeDelta(f *testing.F) {
	for _, d := range []*snapshot.Delta{deltaTestDelta(0, 512, 1), deltaTestDelta(2, 512, 3), deltaTestDelta(3, 1024, 9)} {
		f.Add(deltaEncode(f, d))
	}
	f.Add(deltaGoodBuild().bytes())
	f.Fuzz(func(t *testing.T, obj []byte) {
		deltaFuzzOne(t, obj)
		// And again with a valid trailer, so that the fuzzer reaches past
		// the SHA-256 check, into the page block, as hostile input would.
		if len(obj) >= sha256.Size {
			deltaFuzzOne(t, deltaSign(obj))
		}
	})
}

func deltaFuzzOne(t *testing.T, obj []byte) {
	d, err := snapshot.DecodeDelta(bytes.NewReader(obj))
	if err != nil {
		if !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("an error reading bytes that is not ErrCorrupt: %v", err)
		}
		return
	}
	var buf bytes.Buffer
	if _, err := d.Encode(&buf); err != nil {
		t.Fatalf("a decoded delta does not encode: %v", err)
	}
	again, err := snapshot.DecodeDelta(&buf)
	if err != nil || !deltaEqual(again, d) {
		t.Fatalf("a decoded delta does not round-trip: %v", err)
	}
}

// deltaBenchDelta is a delta of n 4 KiB pages, half text-like, half zero.
func deltaBenchDelta(n int) *snapshot.Delta {
	d := deltaTestDelta(0, 4096, uint32(n))
	tab := crc64.MakeTable(crc64.ECMA)
	for i := range n {
		p := make([]byte, 4096)
		for j := 0; j < 2048; j += 8 {
			binary.BigEndian.PutUint64(p[j:], crc64.Checksum([]byte{byte(i), byte(i >> 8), byte(j), byte(j >> 8)}, tab)&0x3f3f3f3f3f3f3f3f|0x4040404040404040)
		}
		if i == 0 {
			snapshot.NormalizePage1(p)
		}
		d.Pages = append(d.Pages, snapshot.Page{No: uint32(i + 1), Data: p})
	}
	return d
}

func BenchmarkDeltaEncode(b *testing.B) {
	for _, n := range []int{16, 16384} {
		d := deltaBenchDelta(n)
		b.Run(fmt.Sprintf("pages=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n) * 4096)
			for b.Loop() {
				if _, err := d.Encode(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDeltaDecode(b *testing.B) {
	for _, n := range []int{16, 16384} {
		obj := deltaEncode(b, deltaBenchDelta(n))
		b.Run(fmt.Sprintf("pages=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n) * 4096)
			b.ReportMetric(float64(len(obj))/float64(n*4096), "ratio")
			for b.Loop() {
				if _, err := snapshot.DecodeDelta(bytes.NewReader(obj)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
