//go:build cgo

package driver

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// diff ships the changes since the last flush found page by page: a
// snapshot of the state src holds now, taken with the backup API, against
// the image the bucket holds (l.im). It is the capture where the WAL
// cannot tell what changed: a working copy in rollback-journal mode, or a
// WAL reset while frames were not yet captured. It reads the whole
// database, as a full flush does, but uploads only the pages that
// changed; when they come to a compaction's worth, the snapshot is
// uploaded as the new base instead. pos is the WAL position the snapshot
// includes (zero in rollback-journal mode).
func (l *logSync) diff(ctx context.Context, src *sqlite3.SQLiteConn, remote remoteState, pending func(string) error, pos snapshot.WALPosition, out shipped) (shipped, error) {
	f, err := snapshot.Take(ctx, src, l.tempDir)
	if err != nil {
		return out, &snapshot.Error{Op: "flush", Key: l.key, Err: err}
	}
	defer f.Remove()
	if out.version == 0 {
		out.version = f.DataVersion
	}
	im, err := snapshot.FileImage(f.Path())
	if err != nil {
		return out, err
	}
	if l.im == nil || im.PageSize != l.im.PageSize {
		return l.publishBase(ctx, f, im, remote, pending, pos, out)
	}
	pages, err := changedPages(l.im, im, f.Path())
	if err != nil {
		return out, err
	}
	l.needBase = false
	if len(pages) == 0 && im.Pages() == l.im.Pages() {
		l.pos = pos
		return out, nil // committed and undone
	}
	d, err := l.encodePages(pages, im.Pages(), pos)
	if err != nil {
		return out, err
	}
	if d.post != im.Checksum {
		return out, fmt.Errorf("page diff: the changed pages give image checksum %s, the snapshot has %s", hexSum(d.post), hexSum(im.Checksum))
	}
	if int64(len(d.data))*compactRatio >= l.baseSize {
		// As big as a compaction would make it: one base, not a delta
		// and then a base.
		return l.publishBase(ctx, f, im, remote, pending, pos, out)
	}
	if err := l.send(ctx, d, pending); err != nil {
		return out, err
	}
	out.result.Uploaded, out.result.BytesWritten = true, int64(len(d.data))
	if l.compactionDue() {
		res, err := l.publishBase(ctx, f, im, remote, pending, pos, out)
		if err != nil {
			l.compactionFailed(err)
			return out, nil
		}
		res.result.BytesWritten += int64(len(d.data))
		return res, nil
	}
	return out, nil
}

// changedPages returns the pages of the database file at path (whose
// Image is now) whose checksums differ from old's, or that lie past old's
// end, in order, page 1 normalized.
func changedPages(old, now *snapshot.Image, path string) ([]snapshot.Page, error) {
	var nos []uint32
	for i, s := range now.Sums {
		if i >= len(old.Sums) || old.Sums[i] != s {
			nos = append(nos, uint32(i+1))
		}
	}
	if len(nos) == 0 {
		return nil, nil
	}
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ps := int64(now.PageSize)
	pages := make([]snapshot.Page, len(nos))
	for i, no := range nos {
		data := make([]byte, ps)
		if _, err := r.ReadAt(data, int64(no-1)*ps); err != nil {
			return nil, fmt.Errorf("page diff: reading page %d: %w", no, err)
		}
		if no == 1 {
			snapshot.NormalizePage1(data)
		}
		pages[i] = snapshot.Page{No: no, Data: data}
	}
	return pages, nil
}

// sortedPages returns the captured pages in order, page 1 normalized.
func sortedPages(captured map[uint32][]byte) []snapshot.Page {
	pages := make([]snapshot.Page, 0, len(captured))
	for no, data := range captured {
		if no == 1 {
			data = snapshot.NormalizePage1(slices.Clone(data))
		}
		pages = append(pages, snapshot.Page{No: no, Data: data})
	}
	slices.SortFunc(pages, func(a, b snapshot.Page) int { return int(a.No) - int(b.No) })
	return pages
}
