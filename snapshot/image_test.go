package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc64"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// imageTestFile returns n pages of pageSize pseudo-random bytes, page 1
// in WAL mode (bytes 18, 19 = 2), as a working copy's would be.
func imageTestFile(seed uint64, n, pageSize int) []byte {
	b := make([]byte, n*pageSize)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if n > 0 {
		b[18], b[19] = 2, 2
	}
	return b
}

// imageNaive computes an image's checksum page by page, as the
// specification in docs/FORMAT.md says, independently of ImageFromFile.
func imageNaive(file []byte, pageSize int) (sums []uint64, checksum uint64) {
	tab := crc64.MakeTable(crc64.ISO)
	for i := 0; i < len(file); i += pageSize {
		page := slices.Clone(file[i : i+pageSize])
		if i == 0 && len(page) >= 100 {
			page[18], page[19] = 1, 1
			clear(page[24:28])
			clear(page[92:100])
		}
		var no [4]byte
		binary.BigEndian.PutUint32(no[:], uint32(i/pageSize+1))
		x := crc64.Checksum(append(no[:], page...), tab)
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		x *= 0xc4ceb9fe1a85ec53
		x ^= x >> 33
		sums = append(sums, x)
		checksum ^= x
	}
	return sums, checksum
}

func TestImageFromFileMatchesSpec(t *testing.T) {
	for _, tc := range []struct{ pages, pageSize int }{{0, 512}, {1, 512}, {3, 4096}, {2100, 1024}, {70, 65536}} {
		file := imageTestFile(uint64(tc.pages), tc.pages, tc.pageSize)
		orig := slices.Clone(file)
		im, err := snapshot.ImageFromFile(bytes.NewReader(file), int64(len(file)), tc.pageSize)
		if err != nil {
			t.Fatal(err)
		}
		sums, sum := imageNaive(file, tc.pageSize)
		if im.Checksum != sum || !slices.Equal(im.Sums, sums) || im.PageSize != tc.pageSize || int(im.Pages()) != tc.pages {
			t.Errorf("%d pages of %d: image %x (%d sums), want %x (%d)", tc.pages, tc.pageSize, im.Checksum, len(im.Sums), sum, len(sums))
		}
		if !bytes.Equal(file, orig) {
			t.Errorf("%d pages of %d: ImageFromFile modified the file", tc.pages, tc.pageSize)
		}
	}
}

func TestImagePage1Normalized(t *testing.T) {
	wal := imageTestFile(1, 4, 512)
	rollback := slices.Clone(wal)
	snapshot.NormalizePage1(rollback[:512])
	if rollback[18] != 1 || rollback[19] != 1 || !bytes.Equal(rollback[20:], wal[20:]) || !bytes.Equal(rollback[:18], wal[:18]) {
		t.Fatalf("NormalizePage1 changed more or less than bytes 18 and 19")
	}
	a, err := snapshot.ImageFromFile(bytes.NewReader(wal), int64(len(wal)), 512)
	if err != nil {
		t.Fatal(err)
	}
	b, err := snapshot.ImageFromFile(bytes.NewReader(rollback), int64(len(rollback)), 512)
	if err != nil {
		t.Fatal(err)
	}
	if a.Checksum != b.Checksum {
		t.Errorf("WAL-mode page 1 checksums %x, rollback-mode %x: want equal", a.Checksum, b.Checksum)
	}
	if a.Sums[0] != snapshot.PageChecksum(1, rollback[:512]) {
		t.Errorf("page 1's sum is not PageChecksum of the normalized page")
	}
}

func TestImageChecksumPositionSensitive(t *testing.T) {
	file := imageTestFile(7, 4, 1024)
	swapped := slices.Clone(file)
	copy(swapped[1024:2048], file[2048:3072])
	copy(swapped[2048:3072], file[1024:2048])
	a, err := snapshot.ImageFromFile(bytes.NewReader(file), int64(len(file)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := snapshot.ImageFromFile(bytes.NewReader(swapped), int64(len(swapped)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if a.Checksum == b.Checksum {
		t.Errorf("swapping pages 2 and 3 left the image checksum %x unchanged", a.Checksum)
	}
	page := file[1024:2048]
	if snapshot.PageChecksum(2, page) == snapshot.PageChecksum(3, page) {
		t.Errorf("PageChecksum ignores the page number")
	}
	// The swap through Update gives the same answer as the file.
	c := a.Clone()
	sum, err := c.Update([]snapshot.Page{{No: 2, Data: file[2048:3072]}, {No: 3, Data: file[1024:2048]}}, 4)
	if err != nil || sum != b.Checksum {
		t.Errorf("Update swapping pages: %x, %v; want %x", sum, err, b.Checksum)
	}
}

func TestImageFromFileErrors(t *testing.T) {
	file := imageTestFile(2, 4, 512)
	for _, tc := range []struct {
		name     string
		size     int64
		pageSize int
		want     string
	}{
		{"page size not a power of two", 2048, 1000, "page size"},
		{"page size too small", 2048, 256, "page size"},
		{"page size too large", 2048, 131072, "page size"},
		{"size not a multiple", 2000, 512, "multiple"},
		{"negative size", -512, 512, "multiple"},
		{"file shorter than size", 4096, 512, "reading"},
	} {
		_, err := snapshot.ImageFromFile(bytes.NewReader(file), tc.size, tc.pageSize)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// imageOf returns ImageFromFile of file, failing t on an error.
func imageOf(t testing.TB, file []byte, pageSize int) *snapshot.Image {
	t.Helper()
	im, err := snapshot.ImageFromFile(bytes.NewReader(file), int64(len(file)), pageSize)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestImageUpdate(t *testing.T) {
	const ps = 512
	base := imageTestFile(3, 6, ps)
	page := func(seed uint64, no uint32) snapshot.Page {
		d := imageTestFile(seed, 1, ps)
		if no == 1 {
			snapshot.NormalizePage1(d)
		} else {
			d[18], d[19] = 9, 9
		}
		return snapshot.Page{No: no, Data: d}
	}
	// result applies pages to file as a database would, returning the new file.
	result := func(file []byte, pages []snapshot.Page, commit uint32) []byte {
		out := make([]byte, int(commit)*ps)
		copy(out, file)
		for _, p := range pages {
			copy(out[int(p.No-1)*ps:], p.Data)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		pages  []snapshot.Page
		commit uint32
	}{
		{"nothing", nil, 6},
		{"change two", []snapshot.Page{page(10, 2), page(11, 5)}, 6},
		{"change page 1", []snapshot.Page{page(12, 1)}, 6},
		{"shrink", []snapshot.Page{page(13, 1)}, 3},
		{"shrink to one", nil, 1},
		{"grow", []snapshot.Page{page(14, 3), page(15, 7), page(16, 8)}, 8},
		{"grow and unsorted", []snapshot.Page{page(17, 8), page(18, 2), page(19, 7)}, 8},
		{"page given twice: the later wins", []snapshot.Page{page(20, 7), page(21, 2), page(22, 7)}, 7},
	} {
		im := imageOf(t, base, ps)
		want := imageOf(t, result(base, tc.pages, tc.commit), ps)
		got, err := im.Update(tc.pages, tc.commit)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != want.Checksum || im.Checksum != want.Checksum || !slices.Equal(im.Sums, want.Sums) || im.Pages() != tc.commit {
			t.Errorf("%s: Update gives %x (%d pages), ImageFromFile of the result %x (%d pages)",
				tc.name, got, im.Pages(), want.Checksum, want.Pages())
		}
	}

	bad := page(30, 2)
	for _, tc := range []struct {
		name   string
		pages  []snapshot.Page
		commit uint32
		want   string
	}{
		{"hole", []snapshot.Page{page(31, 8)}, 8, "page 7 is not given"},
		{"hole at the old end", []snapshot.Page{page(31, 8), page(32, 8)}, 8, "page 7 is not given"},
		{"page beyond commit", []snapshot.Page{page(31, 5)}, 4, "outside"},
		{"page 0", []snapshot.Page{page(31, 0)}, 6, "outside"},
		{"short page", []snapshot.Page{{No: 2, Data: bad.Data[:100]}}, 6, "100 bytes"},
		{"page 1 not normalized", []snapshot.Page{{No: 1, Data: imageTestFile(33, 1, ps)}}, 6, "not normalized"},
	} {
		im := imageOf(t, base, ps)
		before := im.Clone()
		if _, err := im.Update(tc.pages, tc.commit); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
		if im.Checksum != before.Checksum || !slices.Equal(im.Sums, before.Sums) {
			t.Errorf("%s: a refused Update changed the image", tc.name)
		}
	}
}

func TestImageClone(t *testing.T) {
	im := imageOf(t, imageTestFile(4, 3, 512), 512)
	c := im.Clone()
	c.Sums[0]++
	c.Checksum++
	if im.Sums[0] == c.Sums[0] || im.Checksum == c.Checksum {
		t.Errorf("Clone shares its sums with the original")
	}
	if empty := (&snapshot.Image{PageSize: 512}).Clone(); empty.Pages() != 0 || empty.Checksum != 0 {
		t.Errorf("Clone of an empty image: %+v", empty)
	}
}

func BenchmarkImageFromFile(b *testing.B) {
	const size = 256 << 20
	file := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(file[i:], r.Uint64())
	}
	b.SetBytes(size)
	for b.Loop() {
		if _, err := snapshot.ImageFromFile(bytes.NewReader(file), size, 4096); err != nil {
			b.Fatal(err)
		}
	}
}
