package snapshot

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// walTestOpen opens (creating) a WAL-mode database at path with one pooled
// connection, auto-checkpoints off. pageSize 0 keeps SQLite's default.
func walTestOpen(t testing.TB, path string, pageSize int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	t.Cleanup(func() { db.Close() })
	if pageSize != 0 {
		walExec(t, db, fmt.Sprintf("PRAGMA page_size=%d", pageSize))
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode=WAL").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode=WAL: %q, %v", mode, err)
	}
	walExec(t, db, "PRAGMA wal_autocheckpoint=0")
	walExec(t, db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
	return db
}

func walExec(t testing.TB, db interface {
	Exec(string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// walInsert inserts n rows of size bytes each, one transaction per row
// when perTx, else in one transaction.
func walInsert(t testing.TB, db *sql.DB, n, size int, perTx bool) {
	t.Helper()
	if perTx {
		for range n {
			walExec(t, db, "INSERT INTO t(v) VALUES (randomblob(?))", size)
		}
		return
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		walExec(t, tx, "INSERT INTO t(v) VALUES (randomblob(?))", size)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func walCopyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		b = nil
	} else if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func walRead(t testing.TB, path string, pos WALPosition) *WALChanges {
	t.Helper()
	ch, err := ReadWAL(path, pos)
	if err != nil {
		t.Fatalf("ReadWAL(%+v): %v", pos, err)
	}
	return ch
}

// walApply writes the pages of chs in order over the file at path and
// truncates it to the last Commit.
func walApply(t testing.TB, path string, chs ...*WALChanges) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, ch := range chs {
		for pgno, page := range ch.Pages {
			if len(page) != ch.PageSize {
				t.Fatalf("page %d: %d bytes, page size %d", pgno, len(page), ch.PageSize)
			}
			if _, err := f.WriteAt(page, int64(pgno-1)*int64(ch.PageSize)); err != nil {
				t.Fatal(err)
			}
		}
		if ch.Commit != 0 {
			if err := f.Truncate(int64(ch.Commit) * int64(ch.PageSize)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// walCheckpointed returns the bytes of the live database at dbPath as SQLite
// itself sees them: a copy of the main file and WAL, opened (SQLite
// recovers the WAL) and checkpointed into the main file.
func walCheckpointed(t testing.TB, dbPath string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ckpt.db")
	walCopyFile(t, dbPath, dst)
	walCopyFile(t, dbPath+"-wal", dst+"-wal")
	db, err := sql.Open("sqlite3", "file:"+dst)
	if err != nil {
		t.Fatal(err)
	}
	var busy, logFrames, done int
	if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil || busy != 0 {
		t.Fatalf("checkpoint copy: busy %d, %v", busy, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// walSummary is a content summary of a database's table t.
func walSummary(t testing.TB, db *sql.DB) string {
	t.Helper()
	var n, total int64
	var sum sql.NullString
	if err := db.QueryRow("SELECT count(*), coalesce(sum(length(v)),0), hex(max(v)) FROM t").Scan(&n, &total, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, %d bytes, max %.32s", n, total, sum.String)
}

// walCheckPatched applies chs to a copy of base and checks that the result
// is byte for byte what SQLite makes of the live database, and that it
// opens with the live database's content.
func walCheckPatched(t testing.TB, base, live string, liveDB *sql.DB, chs ...*WALChanges) {
	t.Helper()
	patched := filepath.Join(t.TempDir(), "patched.db")
	walCopyFile(t, base, patched)
	walApply(t, patched, chs...)
	got, err := os.ReadFile(patched)
	if err != nil {
		t.Fatal(err)
	}
	want := walCheckpointed(t, live)
	if !bytes.Equal(got, want) {
		t.Fatalf("patched copy (%d bytes) differs from the checkpointed database (%d bytes)", len(got), len(want))
	}
	db, err := sql.Open("sqlite3", "file:"+patched+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("patched copy: integrity_check %q, %v", ok, err)
	}
	if g, w := walSummary(t, db), walSummary(t, liveDB); g != w {
		t.Fatalf("patched copy holds %s, live database %s", g, w)
	}
}

// walFrameCount is the number of whole frames in the WAL file at path.
func walFrameCount(t testing.TB, path string, pageSize int) uint32 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < walHeaderSize {
		return 0
	}
	return uint32((st.Size() - walHeaderSize) / int64(walFrameHeaderSize+pageSize))
}

// walFramePages returns the page numbers in the headers of frames
// from+1..to of the WAL file at path, read independently of ReadWAL.
func walFramePages(t testing.TB, path string, pageSize int, from, to uint32) map[uint32]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := map[uint32]bool{}
	for i := from; i < to; i++ {
		off := walHeaderSize + int(i)*(walFrameHeaderSize+pageSize)
		set[binary.BigEndian.Uint32(b[off:])] = true
	}
	return set
}

func TestReadWALMatchesDatabase(t *testing.T) {
	for _, pageSize := range []int{4096, 65536} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "db")
			db := walTestOpen(t, path, pageSize)
			base := filepath.Join(dir, "base")
			walCopyFile(t, path, base)

			walInsert(t, db, 40, 3000, true)
			walInsert(t, db, 200, 700, false)
			walExec(t, db, "DELETE FROM t WHERE id % 3 = 0")
			walExec(t, db, "UPDATE t SET v = randomblob(100) WHERE id % 5 = 0")

			ch := walRead(t, path+"-wal", WALPosition{})
			if ch.PageSize != pageSize {
				t.Fatalf("PageSize %d, want %d", ch.PageSize, pageSize)
			}
			if ps, err := WALPageSize(path + "-wal"); err != nil || ps != pageSize {
				t.Fatalf("WALPageSize: %d, %v", ps, err)
			}
			var pages uint32
			if err := db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
				t.Fatal(err)
			}
			if ch.Commit != pages {
				t.Fatalf("Commit %d, page_count %d", ch.Commit, pages)
			}
			if n := walFrameCount(t, path+"-wal", pageSize); ch.Frames != n || ch.Next.Frames != n {
				t.Fatalf("Frames %d, Next.Frames %d; the WAL holds %d committed frames", ch.Frames, ch.Next.Frames, n)
			}
			if want := walFramePages(t, path+"-wal", pageSize, 0, ch.Frames); !maps.Equal(walKeys(ch.Pages), want) {
				t.Fatalf("pages %v, the frames wrote %v", slices.Sorted(maps.Keys(ch.Pages)), slices.Sorted(maps.Keys(want)))
			}
			walCheckPatched(t, base, path, db, ch)

			// Nothing new: no pages, Next unchanged.
			again := walRead(t, path+"-wal", ch.Next)
			if len(again.Pages) != 0 || again.Commit != 0 || again.Frames != 0 || again.Next != ch.Next {
				t.Fatalf("second read: %d pages, commit %d, frames %d, next %+v (want %+v)", len(again.Pages), again.Commit, again.Frames, again.Next, ch.Next)
			}
		})
	}
}

func walKeys(m map[uint32][]byte) map[uint32]bool {
	set := map[uint32]bool{}
	for k := range m {
		set[k] = true
	}
	return set
}

func TestReadWALIncremental(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 4096)
	base := filepath.Join(dir, "base")
	walCopyFile(t, path, base)

	walInsert(t, db, 100, 500, false)
	first := walRead(t, path+"-wal", WALPosition{})
	walInsert(t, db, 5, 200, true)
	walExec(t, db, "UPDATE t SET v = x'00' WHERE id = 1")
	second := walRead(t, path+"-wal", first.Next)

	n := walFrameCount(t, path+"-wal", 4096)
	if second.Frames != n-first.Next.Frames || second.Next.Frames != n {
		t.Fatalf("second read: %d frames, next at %d; the WAL holds %d, first read ended at %d", second.Frames, second.Next.Frames, n, first.Next.Frames)
	}
	if want := walFramePages(t, path+"-wal", 4096, first.Next.Frames, n); !maps.Equal(walKeys(second.Pages), want) {
		t.Fatalf("second read returned pages %v, new frames wrote %v", slices.Sorted(maps.Keys(second.Pages)), slices.Sorted(maps.Keys(want)))
	}
	walCheckPatched(t, base, path, db, first, second)

	// Resuming from the middle equals reading everything at once.
	all := walRead(t, path+"-wal", WALPosition{})
	merged := maps.Clone(first.Pages)
	maps.Copy(merged, second.Pages)
	if !maps.EqualFunc(all.Pages, merged, bytes.Equal) || all.Next != second.Next || all.Commit != second.Commit {
		t.Fatal("two incremental reads differ from one full read")
	}
}

func TestReadWALUncommittedTransaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 4096)
	base := filepath.Join(dir, "base")
	walCopyFile(t, path, base)
	walInsert(t, db, 10, 100, true)
	before := walRead(t, path+"-wal", WALPosition{})

	walExec(t, db, "PRAGMA cache_size=1")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for range 100 {
		walExec(t, tx, "INSERT INTO t(v) VALUES (randomblob(3000))")
	}
	if n := walFrameCount(t, path+"-wal", 4096); n <= before.Next.Frames {
		t.Fatalf("no cache spill: the WAL holds %d frames, %d committed", n, before.Next.Frames)
	}
	during := walRead(t, path+"-wal", before.Next)
	if len(during.Pages) != 0 || during.Commit != 0 || during.Frames != 0 || during.Next != before.Next {
		t.Fatalf("read during the transaction: %d pages, commit %d, next %+v", len(during.Pages), during.Commit, during.Next)
	}
	fromZero := walRead(t, path+"-wal", WALPosition{})
	if !maps.EqualFunc(fromZero.Pages, before.Pages, bytes.Equal) || fromZero.Next != before.Next {
		t.Fatal("a read from the start during the transaction returned its frames")
	}

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	after := walRead(t, path+"-wal", before.Next)
	if after.Frames == 0 || after.Commit == 0 {
		t.Fatalf("after commit: %d frames, commit %d", after.Frames, after.Commit)
	}
	walCheckPatched(t, base, path, db, before, after)
}

func TestReadWALTornFrame(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 4096)
	walInsert(t, db, 50, 500, false)
	good := walRead(t, path+"-wal", WALPosition{})
	walInsert(t, db, 50, 500, false) // the transaction to tear
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	frameSize := walFrameHeaderSize + 4096
	lastFrame := len(wal) - frameSize
	firstTorn := walHeaderSize + int(good.Next.Frames)*frameSize

	cases := map[string][]byte{
		"truncated mid-frame":         wal[:len(wal)-frameSize/2],
		"truncated mid-frame-header":  wal[:lastFrame+10],
		"last frame page corrupted":   walFlip(wal, len(wal)-1),
		"last frame header corrupted": walFlip(wal, lastFrame+4), // commit size
		"first new frame corrupted":   walFlip(wal, firstTorn+walFrameHeaderSize+100),
		"first new frame salt":        walFlip(wal, firstTorn+8),
		"first new frame pgno 0":      walZero(wal, firstTorn, 4),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			torn := filepath.Join(t.TempDir(), "wal")
			if err := os.WriteFile(torn, b, 0o600); err != nil {
				t.Fatal(err)
			}
			ch := walRead(t, torn, WALPosition{})
			if ch.Next != good.Next || ch.Commit != good.Commit || !maps.EqualFunc(ch.Pages, good.Pages, bytes.Equal) {
				t.Fatalf("read ended at %+v (commit %d), want the previous commit %+v (commit %d)", ch.Next, ch.Commit, good.Next, good.Commit)
			}
			more := walRead(t, torn, good.Next)
			if len(more.Pages) != 0 || more.Next != good.Next {
				t.Fatalf("resuming at the last good commit returned %d pages", len(more.Pages))
			}
		})
	}
}

func walFlip(b []byte, at int) []byte {
	c := slices.Clone(b)
	c[at] ^= 0x40
	return c
}

func walZero(b []byte, at, n int) []byte {
	c := slices.Clone(b)
	clear(c[at : at+n])
	return c
}

func TestReadWALRestartTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 4096)
	walInsert(t, db, 30, 500, true)
	old := walRead(t, path+"-wal", WALPosition{})

	walExec(t, db, "PRAGMA wal_checkpoint(TRUNCATE)")
	if _, err := ReadWAL(path+"-wal", old.Next); !errors.Is(err, ErrWALReset) {
		t.Fatalf("truncated WAL, old position: %v, want ErrWALReset", err)
	}
	empty := walRead(t, path+"-wal", WALPosition{})
	if len(empty.Pages) != 0 || empty.Next != (WALPosition{}) || empty.Commit != 0 {
		t.Fatalf("empty WAL, zero position: %+v", empty)
	}

	base := filepath.Join(dir, "base")
	walCopyFile(t, path, base)
	walInsert(t, db, 3, 500, true)
	if _, err := ReadWAL(path+"-wal", old.Next); !errors.Is(err, ErrWALReset) {
		t.Fatalf("new generation, old position: %v, want ErrWALReset", err)
	}
	fresh := walRead(t, path+"-wal", WALPosition{})
	if fresh.Next.Salt1 == old.Next.Salt1 && fresh.Next.Salt2 == old.Next.Salt2 {
		t.Fatal("the new generation has the old salts")
	}
	walCheckPatched(t, base, path, db, fresh)
}

func TestReadWALStaleFramesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 4096)
	walInsert(t, db, 60, 2000, true)
	old := walRead(t, path+"-wal", WALPosition{})

	var busy, logFrames, done int
	if err := db.QueryRow("PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &logFrames, &done); err != nil || busy != 0 || done != logFrames {
		t.Fatalf("checkpoint RESTART: busy %d, %d/%d frames, %v", busy, done, logFrames, err)
	}
	base := filepath.Join(dir, "base")
	walCopyFile(t, path, base)
	walInsert(t, db, 2, 100, true)

	n := walFrameCount(t, path+"-wal", 4096)
	fresh := walRead(t, path+"-wal", WALPosition{})
	if fresh.Next.Frames == 0 || fresh.Next.Frames >= n || n < old.Next.Frames {
		t.Fatalf("read %d frames; the file holds %d (the old generation %d): no stale frames to skip?", fresh.Next.Frames, n, old.Next.Frames)
	}
	if _, err := ReadWAL(path+"-wal", old.Next); !errors.Is(err, ErrWALReset) {
		t.Fatalf("restarted WAL, old position: %v, want ErrWALReset", err)
	}
	walCheckPatched(t, base, path, db, fresh)
}

// walTestFrame is one frame of a synthetic WAL.
type walTestFrame struct {
	pgno, commit uint32
	fill         byte // page content: fill, fill+1, ...
}

// walTestSum is the WAL checksum as the format documents it, written
// independently of walChecksum.
func walTestSum(order binary.ByteOrder, s [2]uint32, b []byte) [2]uint32 {
	for i := 0; i < len(b); i += 8 {
		s[0] += order.Uint32(b[i:]) + s[1]
		s[1] += order.Uint32(b[i+4:]) + s[0]
	}
	return s
}

func walTestPage(pageSize int, fill byte) []byte {
	p := make([]byte, pageSize)
	for i := range p {
		p[i] = fill + byte(i*7)
	}
	return p
}

// walBuild makes a WAL file image: header with the magic for bigEndian,
// the page size as given (stored as is), and frames.
func walBuild(bigEndian bool, pageSize int, salt1, salt2 uint32, frames []walTestFrame) []byte {
	var order binary.ByteOrder = binary.LittleEndian
	magic := uint32(walMagicLE)
	if bigEndian {
		order, magic = binary.BigEndian, walMagicBE
	}
	be := binary.BigEndian
	b := make([]byte, walHeaderSize)
	be.PutUint32(b[0:], magic)
	be.PutUint32(b[4:], walFormatVersion)
	be.PutUint32(b[8:], uint32(pageSize))
	be.PutUint32(b[12:], 7)
	be.PutUint32(b[16:], salt1)
	be.PutUint32(b[20:], salt2)
	s := walTestSum(order, [2]uint32{}, b[:24])
	be.PutUint32(b[24:], s[0])
	be.PutUint32(b[28:], s[1])
	for _, f := range frames {
		h := make([]byte, walFrameHeaderSize)
		be.PutUint32(h[0:], f.pgno)
		be.PutUint32(h[4:], f.commit)
		be.PutUint32(h[8:], salt1)
		be.PutUint32(h[12:], salt2)
		page := walTestPage(pageSize, f.fill)
		s = walTestSum(order, s, h[:8])
		s = walTestSum(order, s, page)
		be.PutUint32(h[16:], s[0])
		be.PutUint32(h[20:], s[1])
		b = append(b, h...)
		b = append(b, page...)
	}
	return b
}

// walModel is what a reader of frames[from:] must return: the latest image
// per page up to the last commit frame, and that frame's count.
func walModel(pageSize int, frames []walTestFrame, from int) (map[uint32][]byte, uint32, uint32) {
	pages := map[uint32][]byte{}
	var pending []walTestFrame
	var commit uint32
	upTo := uint32(from)
	for i, f := range frames[from:] {
		pending = append(pending, f)
		if f.commit != 0 {
			for _, p := range pending {
				pages[p.pgno] = walTestPage(pageSize, p.fill)
			}
			pending = pending[:0]
			commit, upTo = f.commit, uint32(from+i+1)
		}
	}
	return pages, commit, upTo
}

func walWriteTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wal")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// walTestFrames makes txs random transactions over 25 pages (the sixth
// one 30 frames long), then an uncommitted tail.
func walTestFrames(txs int) []walTestFrame {
	rng := rand.New(rand.NewPCG(1, 2))
	var frames []walTestFrame
	for tx := range txs {
		n := 1 + rng.IntN(12)
		if tx == 5 {
			n = 30 // spans read blocks when they are small
		}
		for i := range n {
			f := walTestFrame{pgno: 1 + uint32(rng.IntN(25)), fill: byte(rng.Uint32())}
			if i == n-1 {
				f.commit = 25 + uint32(tx)
			}
			frames = append(frames, f)
		}
	}
	return append(frames, walTestFrame{pgno: 3, fill: 1}, walTestFrame{pgno: 99, fill: 2})
}

func TestReadWALSynthetic(t *testing.T) {
	for _, bigEndian := range []bool{false, true} {
		for _, pageSize := range []int{512, 65536} {
			frames := walTestFrames(40)
			if pageSize == 65536 {
				frames = walTestFrames(8)
			}
			for _, block := range []int{walReadBlock, 3 * (walFrameHeaderSize + pageSize), 1} {
				name := fmt.Sprintf("bigEndian=%v/page=%d/block=%d", bigEndian, pageSize, block)
				t.Run(name, func(t *testing.T) {
					defer func(b int) { walReadBlock = b }(walReadBlock)
					walReadBlock = block
					path := walWriteTemp(t, walBuild(bigEndian, pageSize, 0xdeadbeef, 0x01020304, frames))
					if ps, err := WALPageSize(path); err != nil || ps != pageSize {
						t.Fatalf("WALPageSize %d, %v", ps, err)
					}
					var pos WALPosition
					for _, from := range []int{0, 7, len(frames) / 2, len(frames) - 1, len(frames)} {
						// Find the commit frame at or before from for a resume point.
						if from != 0 {
							_, _, upTo := walModel(pageSize, frames[:from], 0)
							pos = walPositionAt(t, path, upTo)
						}
						ch := walRead(t, path, pos)
						want, commit, upTo := walModel(pageSize, frames, int(pos.Frames))
						if !maps.EqualFunc(ch.Pages, want, bytes.Equal) {
							t.Fatalf("from %d: pages %v, want %v", pos.Frames, slices.Sorted(maps.Keys(ch.Pages)), slices.Sorted(maps.Keys(want)))
						}
						if ch.Commit != commit || ch.Next.Frames != upTo || ch.Frames != upTo-pos.Frames || ch.PageSize != pageSize {
							t.Fatalf("from %d: commit %d frames %d next %d, want %d %d %d", pos.Frames, ch.Commit, ch.Frames, ch.Next.Frames, commit, upTo-pos.Frames, upTo)
						}
						if ch.Next.Salt1 != 0xdeadbeef || ch.Next.Salt2 != 0x01020304 {
							t.Fatalf("next salts %x %x", ch.Next.Salt1, ch.Next.Salt2)
						}
					}
				})
			}
		}
	}
}

// walPositionAt reads the WAL at path from the start, one commit at a time,
// until frames frames are consumed, and returns that position.
func walPositionAt(t testing.TB, path string, frames uint32) WALPosition {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if frames == 0 {
		return walRead(t, path, WALPosition{}).Next
	}
	h, ok := walParseHeader(b)
	if !ok {
		t.Fatal("bad header")
	}
	off := walHeaderSize + int(frames-1)*(walFrameHeaderSize+h.pageSize)
	be := binary.BigEndian
	return WALPosition{Salt1: h.salt1, Salt2: h.salt2, Frames: frames, Checksum1: be.Uint32(b[off+16:]), Checksum2: be.Uint32(b[off+20:])}
}

// TestReadWALBigEndianOfRealWAL re-encodes a WAL written by SQLite with
// big-endian checksums: the reader must return the same pages.
func TestReadWALBigEndianOfRealWAL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 1024)
	walInsert(t, db, 30, 300, true)
	le := walRead(t, path+"-wal", WALPosition{})
	raw, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(raw) != walMagicLE {
		t.Logf("SQLite wrote magic %#x here", binary.BigEndian.Uint32(raw))
	}
	h, ok := walParseHeader(raw)
	if !ok {
		t.Fatal("SQLite's WAL header rejected")
	}
	frameSize := walFrameHeaderSize + h.pageSize
	var frames uint32
	bigWAL := walBuild(true, h.pageSize, h.salt1, h.salt2, nil)
	s := [2]uint32{binary.BigEndian.Uint32(bigWAL[24:]), binary.BigEndian.Uint32(bigWAL[28:])}
	for off := walHeaderSize; off+frameSize <= len(raw) && frames < le.Next.Frames; off += frameSize {
		fr := slices.Clone(raw[off : off+frameSize])
		s = walTestSum(binary.BigEndian, s, fr[:8])
		s = walTestSum(binary.BigEndian, s, fr[walFrameHeaderSize:])
		binary.BigEndian.PutUint32(fr[16:], s[0])
		binary.BigEndian.PutUint32(fr[20:], s[1])
		bigWAL = append(bigWAL, fr...)
		frames++
	}
	be := walRead(t, walWriteTemp(t, bigWAL), WALPosition{})
	if !maps.EqualFunc(be.Pages, le.Pages, bytes.Equal) || be.Commit != le.Commit || be.Frames != le.Frames {
		t.Fatalf("big-endian copy: %d pages, commit %d, %d frames; little-endian: %d, %d, %d", len(be.Pages), be.Commit, be.Frames, len(le.Pages), le.Commit, le.Frames)
	}
	// And the little-endian original does not validate as big-endian.
	flipped := slices.Clone(raw)
	binary.BigEndian.PutUint32(flipped, walMagicBE)
	if ch := walRead(t, walWriteTemp(t, flipped), WALPosition{}); len(ch.Pages) != 0 || ch.Next != (WALPosition{}) {
		t.Fatalf("a header with the wrong byte order for its checksum was accepted")
	}
}

func TestReadWALHeaderEdgeCases(t *testing.T) {
	frames := []walTestFrame{{pgno: 1, commit: 1, fill: 9}}
	good := walBuild(false, 4096, 11, 22, frames)
	goodPos := walRead(t, walWriteTemp(t, good), WALPosition{}).Next
	mod := func(f func(b []byte)) []byte { b := slices.Clone(good); f(b); return b }
	reHeader := func(f func(b []byte)) []byte {
		// Change a header field and fix the header checksum, so only the field is wrong.
		return mod(func(b []byte) {
			f(b)
			s := walTestSum(binary.LittleEndian, [2]uint32{}, b[:24])
			binary.BigEndian.PutUint32(b[24:], s[0])
			binary.BigEndian.PutUint32(b[28:], s[1])
		})
	}
	invalid := map[string][]byte{
		"empty":            {},
		"short":            good[:31],
		"bad magic":        reHeader(func(b []byte) { b[3] = 0x84 }),
		"bad version":      reHeader(func(b []byte) { binary.BigEndian.PutUint32(b[4:], 3007001) }),
		"page size 1":      reHeader(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 1) }),
		"page size 1000":   reHeader(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 1000) }),
		"page size 256":    reHeader(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 256) }),
		"page size 131072": reHeader(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 131072) }),
		"bad checksum":     mod(func(b []byte) { b[31] ^= 1 }),
	}
	for name, b := range invalid {
		t.Run(name, func(t *testing.T) {
			path := walWriteTemp(t, b)
			ch := walRead(t, path, WALPosition{})
			if len(ch.Pages) != 0 || ch.Commit != 0 || ch.Frames != 0 || ch.Next != (WALPosition{}) {
				t.Fatalf("zero position: %+v", ch)
			}
			if ps, err := WALPageSize(path); ps != 0 || err != nil {
				t.Fatalf("WALPageSize: %d, %v", ps, err)
			}
			if _, err := ReadWAL(path, goodPos); !errors.Is(err, ErrWALReset) {
				t.Fatalf("non-zero position: %v, want ErrWALReset", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope-wal")
		ch := walRead(t, path, WALPosition{})
		if len(ch.Pages) != 0 || ch.Next != (WALPosition{}) || ch.PageSize != 0 {
			t.Fatalf("zero position: %+v", ch)
		}
		if _, err := ReadWAL(path, goodPos); !errors.Is(err, ErrWALReset) {
			t.Fatalf("non-zero position: %v, want ErrWALReset", err)
		}
		if ps, err := WALPageSize(path); ps != 0 || err != nil {
			t.Fatalf("WALPageSize: %d, %v", ps, err)
		}
	})
	t.Run("header only", func(t *testing.T) {
		path := walWriteTemp(t, good[:walHeaderSize])
		ch := walRead(t, path, WALPosition{})
		want := WALPosition{Salt1: 11, Salt2: 22,
			Checksum1: binary.BigEndian.Uint32(good[24:]), Checksum2: binary.BigEndian.Uint32(good[28:])}
		if len(ch.Pages) != 0 || ch.Commit != 0 || ch.Next != want || ch.PageSize != 4096 {
			t.Fatalf("got %+v, want next %+v", ch, want)
		}
		// Resuming from the header seed once frames arrive.
		full := walRead(t, walWriteTemp(t, good), ch.Next)
		if full.Next != goodPos || len(full.Pages) != 1 {
			t.Fatalf("resume from the header: %+v", full)
		}
	})
}

func TestReadWALPositionChecks(t *testing.T) {
	frames := []walTestFrame{
		{pgno: 1, fill: 1}, {pgno: 2, commit: 2, fill: 2},
		{pgno: 3, fill: 3}, {pgno: 1, commit: 3, fill: 4},
	}
	b := walBuild(false, 512, 5, 6, frames)
	path := walWriteTemp(t, b)
	at2 := walPositionAt(t, path, 2)
	if ch := walRead(t, path, at2); ch.Next.Frames != 4 || len(ch.Pages) != 2 {
		t.Fatalf("resume at 2: %+v", ch)
	}
	bad := map[string]WALPosition{
		"beyond the end":      {Salt1: 5, Salt2: 6, Frames: 9, Checksum1: at2.Checksum1, Checksum2: at2.Checksum2},
		"wrong checksum":      {Salt1: 5, Salt2: 6, Frames: 2, Checksum1: at2.Checksum1 + 1, Checksum2: at2.Checksum2},
		"not a commit frame":  walPositionAt(t, path, 1),
		"other salts":         {Salt1: 5, Salt2: 7, Frames: 2, Checksum1: at2.Checksum1, Checksum2: at2.Checksum2},
		"header seed differs": {Salt1: 5, Salt2: 6},
	}
	for name, pos := range bad {
		if _, err := ReadWAL(path, pos); !errors.Is(err, ErrWALReset) {
			t.Errorf("%s: %v, want ErrWALReset", name, err)
		}
	}
	// The last frame cut short after pos was taken.
	at4 := walPositionAt(t, path, 4)
	if _, err := ReadWAL(walWriteTemp(t, b[:len(b)-1]), at4); !errors.Is(err, ErrWALReset) {
		t.Errorf("file shorter than pos: %v, want ErrWALReset", err)
	}
}

// TestReadWALConcurrentWriter reads repeatedly while another goroutine
// commits; whatever the interleaving, the chained reads must add up to the
// database.
func TestReadWALConcurrentWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db := walTestOpen(t, path, 4096)
	base := filepath.Join(dir, "base")
	walCopyFile(t, path, base)

	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if _, err := db.Exec("INSERT INTO t(v) VALUES (randomblob(?))", 100+i*37%3000); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var reads []*WALChanges
	var pos WALPosition
	read := func() {
		ch, err := ReadWAL(path+"-wal", pos)
		if err != nil {
			t.Fatal(err)
		}
		reads = append(reads, ch)
		pos = ch.Next
	}
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		read()
	}
	read()
	walCheckPatched(t, base, path, db, reads...)
}

// BenchmarkReadWAL reads a 1000-frame WAL of 4 KiB pages (10 frames per
// commit, 500 distinct pages).
func BenchmarkReadWAL(b *testing.B) {
	var frames []walTestFrame
	for i := range 1000 {
		f := walTestFrame{pgno: 1 + uint32(i%500), fill: byte(i)}
		if i%10 == 9 {
			f.commit = 500
		}
		frames = append(frames, f)
	}
	wal := walBuild(false, 4096, 1, 2, frames)
	path := walWriteTemp(b, wal)
	b.SetBytes(int64(len(wal)))
	b.ReportAllocs()
	for b.Loop() {
		ch, err := ReadWAL(path, WALPosition{})
		if err != nil || ch.Frames != 1000 {
			b.Fatal(ch.Frames, err)
		}
	}
}

// BenchmarkWALChecksum is the checksum alone over one 4 KiB page.
func BenchmarkWALChecksum(b *testing.B) {
	page := walTestPage(4096, 3)
	b.SetBytes(int64(len(page)))
	var s0, s1 uint32
	for b.Loop() {
		s0, s1 = walChecksum(false, s0, s1, page)
	}
	_, _ = s0, s1
}

// TestReadWALRefChangedUnderneath: a frame validated during the scan but
// re-read later (its transaction spanned read blocks) must still be the
// frame validated; if the WAL was overwritten meanwhile, ErrWALReset.
func TestReadWALRefChangedUnderneath(t *testing.T) {
	frames := []walTestFrame{{pgno: 1, fill: 1}, {pgno: 2, commit: 2, fill: 2}}
	b := walBuild(false, 512, 5, 6, frames)
	path := walWriteTemp(t, b)
	h, _ := walParseHeader(b)
	seed0, seed1 := h.checksum1, h.checksum2
	check0 := binary.BigEndian.Uint32(b[walHeaderSize+16:])
	check1 := binary.BigEndian.Uint32(b[walHeaderSize+20:])
	ref := walRef{frame: 1, pgno: 1, seed0: seed0, seed1: seed1, check0: check0, check1: check1}
	load := func(path string) error {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := map[uint32][]byte{}
		return walLoadRefs(f, &h, map[uint32]walRef{1: ref}, make([]byte, 4096), func(pgno uint32, p []byte) { got[pgno] = slices.Clone(p) })
	}
	if err := load(path); err != nil {
		t.Fatalf("unchanged frame: %v", err)
	}
	for name, changed := range map[string][]byte{
		"page":   walFlip(b, walHeaderSize+walFrameHeaderSize+7),
		"salt":   walFlip(b, walHeaderSize+9),
		"cut":    b[:walHeaderSize+100],
		"pgno":   walFlip(b, walHeaderSize+3),
		"resalt": walBuild(false, 512, 6, 6, frames),
	} {
		if err := load(walWriteTemp(t, changed)); !errors.Is(err, ErrWALReset) {
			t.Errorf("%s changed: %v, want ErrWALReset", name, err)
		}
	}
}
