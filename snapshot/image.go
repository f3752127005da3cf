package snapshot

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// imageCRCTable is the CRC-64/ISO table PageChecksum uses.
var imageCRCTable = crc64.MakeTable(crc64.ISO)

// PageChecksum returns the checksum of page number pgno holding data: the
// CRC-64/ISO (hash/crc64, crc64.ISO) of pgno as 4 big-endian bytes
// followed by data, passed through MurmurHash3's 64-bit finalizer (fmix64,
// a bijection; see docs/FORMAT.md).
//
// The finalizer is what makes Image.Checksum, the XOR of the pages'
// checksums, depend on where each page is: a CRC is affine over GF(2), so
// the XOR of bare CRCs of same-length inputs splits into a part from the
// page numbers and a part from the contents, and two pages swapping
// contents would leave it unchanged. Being a bijection, the finalizer
// keeps every difference the CRC detects within a page.
//
// Page 1's checksum leaves out the database header's bookkeeping: it is
// taken with bytes 18 and 19 (the file-format versions) as 1 and bytes
// 24–27 (the file change counter) and 92–99 (version-valid-for and the
// SQLite version number) as 0. SQLite rewrites those without changing
// what the database holds (a backup's commit, a switch to WAL mode), so a
// working copy and the bucket's image of the same content checksum alike.
func PageChecksum(pgno uint32, data []byte) uint64 {
	var no [4]byte
	binary.BigEndian.PutUint32(no[:], pgno)
	crc := crc64.Update(0, imageCRCTable, no[:])
	if pgno == 1 && len(data) >= imageHeaderSize {
		var h [imageHeaderSize]byte
		copy(h[:], data)
		h[imageWriteVersionOffset], h[imageReadVersionOffset] = 1, 1
		clear(h[24:28])
		clear(h[92:100])
		crc = crc64.Update(crc, imageCRCTable, h[:])
		data = data[imageHeaderSize:]
	}
	return imageMix(crc64.Update(crc, imageCRCTable, data))
}

// imageHeaderSize is the size of a SQLite database header.
const imageHeaderSize = 100

// imageMix is MurmurHash3's fmix64: a nonlinear bijection of uint64.
func imageMix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// The offsets of the file-format write and read versions in a SQLite
// database header (https://sqlite.org/fileformat2.html#the_database_header):
// 1 for rollback-journal mode, 2 for WAL.
const (
	imageWriteVersionOffset = 18
	imageReadVersionOffset  = 19
)

// NormalizePage1 sets the file-format bytes 18 and 19 of a database's
// first page to 1 (rollback journal), in place, as a base snapshot has
// them, so that a page 1 taken from a WAL-mode working copy checksums and
// applies like the base's. It returns data. A data shorter than 20 bytes
// is returned unchanged.
func NormalizePage1(data []byte) []byte {
	if len(data) > imageReadVersionOffset {
		data[imageWriteVersionOffset] = 1
		data[imageReadVersionOffset] = 1
	}
	return data
}

// imagePage1Normalized reports whether page 1's data is as NormalizePage1
// leaves it.
func imagePage1Normalized(data []byte) bool {
	return len(data) > imageReadVersionOffset &&
		data[imageWriteVersionOffset] == 1 && data[imageReadVersionOffset] == 1
}

// Page is one database page: its number (1-based, as SQLite counts) and
// its content, a whole page.
type Page struct {
	// No is the page number, from 1.
	No uint32
	// Data is the page's content, PageSize bytes.
	Data []byte
}

// Image is the per-page checksums of a database image, and their XOR (the
// image checksum), which changes with any page's content or position and
// can be updated from the changed pages alone.
//
// Page 1 is always taken normalized (NormalizePage1), so that a database
// in WAL mode and its base snapshot in rollback-journal mode have the same
// image checksum when their pages are otherwise equal. An empty database
// (no pages) has checksum 0.
type Image struct {
	// PageSize is the database's page size in bytes.
	PageSize int
	// Sums holds each page's PageChecksum: Sums[pgno-1].
	Sums []uint64
	// Checksum is the XOR of Sums: the image checksum.
	Checksum uint64
}

// imageBlockSize is how much ImageFromFile reads at a time: a multiple of
// every valid page size.
const imageBlockSize = 4 << 20

// ImageFromFile computes the Image of the database file r of size bytes
// (size a multiple of pageSize, which must be a power of two from 512 to
// 65536; an error otherwise), normalizing page 1 as NormalizePage1 does
// (without modifying the file). It reads the file once, sequentially, in
// large blocks. A file shorter than size is an error.
func ImageFromFile(r io.ReaderAt, size int64, pageSize int) (*Image, error) {
	if !deltaValidPageSize(uint64(pageSize)) {
		return nil, fmt.Errorf("snapshot: image: page size %d is not a power of two from %d to %d",
			pageSize, MinPageSize, MaxPageSize)
	}
	if size < 0 || size%int64(pageSize) != 0 {
		return nil, fmt.Errorf("snapshot: image: file size %d is not a multiple of the page size %d", size, pageSize)
	}
	pages := size / int64(pageSize)
	if pages > MaxPageNo {
		return nil, fmt.Errorf("snapshot: image: file size %d holds %d pages, more than SQLite's %d",
			size, pages, int64(MaxPageNo))
	}
	im := &Image{PageSize: pageSize, Sums: make([]uint64, pages)}
	// Blocks are independent: a few goroutines take them in turn, each
	// reading its block and filling in its sums.
	blocks := (size + imageBlockSize - 1) / imageBlockSize
	workers := int(min(int64(runtime.GOMAXPROCS(0)), imageWorkers, blocks))
	var next atomic.Int64
	errs := make([]error, workers)
	partial := make([]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, min(int64(imageBlockSize), size))
			for {
				off := next.Add(imageBlockSize) - imageBlockSize
				if off >= size {
					return
				}
				b := buf[:min(int64(len(buf)), size-off)]
				n, err := r.ReadAt(b, off)
				if n < len(b) {
					if err == nil || errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					errs[w] = fmt.Errorf("snapshot: image: reading %d bytes at %d of %d: %w", len(b), off, size, err)
					next.Store(size) // the others stop too
					return
				}
				for i := 0; i < len(b); i += pageSize {
					pgno := uint32((off+int64(i))/int64(pageSize)) + 1
					s := PageChecksum(pgno, b[i:i+pageSize]) // normalizes page 1 itself
					im.Sums[pgno-1] = s
					partial[w] ^= s
				}
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			return nil, errs[w]
		}
		im.Checksum ^= partial[w]
	}
	return im, nil
}

// imageWorkers bounds the goroutines ImageFromFile reads and sums with.
const imageWorkers = 4

// Pages returns the number of pages.
func (im *Image) Pages() uint32 { return uint32(len(im.Sums)) }

// Clone returns a deep copy.
func (im *Image) Clone() *Image {
	c := *im
	c.Sums = slices.Clone(im.Sums)
	return &c
}

// Update applies changed pages (page 1 must already be normalized, see
// NormalizePage1) and the new database size in pages, commit: pages
// beyond commit are dropped from the checksum, pages up to commit not in
// pages keep their sums (a page past the old end that is not given is an
// error: the database would have a hole). It returns the new Checksum.
//
// pages may come in any order; a page number given twice takes the later
// page's data, as in a WAL. Each page must be PageSize bytes and numbered
// from 1 to commit. On an error im is unchanged.
func (im *Image) Update(pages []Page, commit uint32) (uint64, error) {
	plan, err := im.imagePlan(pages, commit)
	if err != nil {
		return im.Checksum, err
	}
	im.imageApply(plan)
	return im.Checksum, nil
}

// Preview returns the image checksum Update(pages, commit) would give,
// or its error, without changing im: what a writer records in a delta
// before it knows the delta landed. It costs what the pages cost, not
// what the image holds.
func (im *Image) Preview(pages []Page, commit uint32) (uint64, error) {
	plan, err := im.imagePlan(pages, commit)
	if err != nil {
		return im.Checksum, err
	}
	return plan.checksum, nil
}

// imageUpdate is an Update worked out but not yet made: the pages that
// take effect, their sums, and the checksum that results.
type imageUpdate struct {
	pages    []Page // sorted by No, unique
	sums     []uint64
	commit   uint32
	checksum uint64
}

// imagePlan checks an update of im and works out its result, without
// changing im.
func (im *Image) imagePlan(pages []Page, commit uint32) (*imageUpdate, error) {
	if !deltaValidPageSize(uint64(im.PageSize)) {
		return nil, fmt.Errorf("snapshot: image: page size %d is not a power of two from %d to %d",
			im.PageSize, MinPageSize, MaxPageSize)
	}
	if commit > MaxPageNo {
		return nil, fmt.Errorf("snapshot: image: database size %d pages is more than SQLite's %d", commit, MaxPageNo)
	}
	for _, p := range pages {
		if p.No < 1 || p.No > commit {
			return nil, fmt.Errorf("snapshot: image: page %d is outside the database's %d pages", p.No, commit)
		}
		if len(p.Data) != im.PageSize {
			return nil, fmt.Errorf("snapshot: image: page %d has %d bytes, not the page size %d", p.No, len(p.Data), im.PageSize)
		}
		if p.No == 1 && !imagePage1Normalized(p.Data) {
			return nil, fmt.Errorf("snapshot: image: page 1 is not normalized (bytes 18, 19 are %d, %d, not 1, 1: see NormalizePage1)",
				p.Data[imageWriteVersionOffset], p.Data[imageReadVersionOffset])
		}
	}
	// Keep the last of each page number, sorted.
	if !imageStrictlySorted(pages) {
		idx := make([]int, len(pages))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(pages[a].No, pages[b].No) })
		uniq := make([]Page, 0, len(pages))
		for i, j := range idx {
			if i+1 < len(idx) && pages[idx[i+1]].No == pages[j].No {
				continue
			}
			uniq = append(uniq, pages[j])
		}
		pages = uniq
	}
	old := im.Pages()
	if commit > old {
		var beyond uint32
		for _, p := range pages {
			if p.No > old {
				beyond++
			}
		}
		if beyond != commit-old {
			missing := old + 1
			for _, p := range pages {
				if p.No == missing {
					missing++
				} else if p.No > missing {
					break
				}
			}
			return nil, fmt.Errorf("snapshot: image: the database grows from %d to %d pages but page %d is not given (it would be a hole)",
				old, commit, missing)
		}
	}
	u := &imageUpdate{pages: pages, sums: make([]uint64, len(pages)), commit: commit, checksum: im.Checksum}
	for i := commit; i < old; i++ {
		u.checksum ^= im.Sums[i]
	}
	for i, p := range pages {
		u.sums[i] = PageChecksum(p.No, p.Data)
		if p.No <= old {
			u.checksum ^= im.Sums[p.No-1]
		}
		u.checksum ^= u.sums[i]
	}
	return u, nil
}

// imageApply makes an update worked out by imagePlan.
func (im *Image) imageApply(u *imageUpdate) {
	if int(u.commit) <= len(im.Sums) {
		clear(im.Sums[u.commit:])
		im.Sums = im.Sums[:u.commit]
	} else {
		im.Sums = slices.Grow(im.Sums, int(u.commit)-len(im.Sums))[:u.commit]
	}
	for i, p := range u.pages {
		im.Sums[p.No-1] = u.sums[i]
	}
	im.Checksum = u.checksum
}

// imageStrictlySorted reports whether pages' numbers strictly increase.
func imageStrictlySorted(pages []Page) bool {
	for i := 1; i < len(pages); i++ {
		if pages[i].No <= pages[i-1].No {
			return false
		}
	}
	return true
}
