//go:build cgo

package driver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// errNotWritten marks an apply that failed before it wrote anything: the
// working copy still holds the state it held.
var errNotWritten = errors.New("bucketsqlite: the replica's working copy was not changed")

// applier writes pages into a replica's working copy while its readers
// have it open. go-sqlite3 is built without sqlite_dbpage, so pages are
// written at the file level, with readers held off by an exclusive SQLite
// lock taken on a connection of its own:
//
//   - BEGIN EXCLUSIVE waits for the readers in flight (a read transaction
//     holds the apply off until it ends, so it sees one state throughout)
//     and keeps new ones waiting on their busy timeout;
//   - the pages are written and the file truncated through one *os.File
//     that stays open as long as the replica: closing any descriptor of
//     the file would drop every POSIX lock this process holds on it;
//   - the header's file change counter is bumped, so that every
//     connection drops its page cache when it next locks the file (the
//     image checksum leaves those bytes out);
//   - the empty transaction ends, and readers go on with the new state.
//
// Everything that can be done without the lock (the download, decoding,
// checksums) is done before it is taken.
type applier struct {
	f    *os.File
	conn *sqlite3.SQLiteConn
	// polite is how long BEGIN EXCLUSIVE is tried without holding new
	// readers off; then forceful bounds a wait that does, kept below the
	// readers' busy timeout so that none of them fails meanwhile.
	polite, forceful time.Duration
	// held is how long the last apply held the lock: readers waited at
	// most that long for it.
	held time.Duration
}

// applierPolite is how long an apply waits for a gap between readers
// before it makes new ones wait.
const applierPolite = 50 * time.Millisecond

// openApplier opens the applier of the working copy at path, whose readers
// wait readerBusy for a lock.
func openApplier(path string, readerBusy time.Duration) (*applier, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	c, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(path, url.Values{"mode": {"rw"}, "_busy_timeout": {"0"}}))
	if err != nil {
		// No SQLite connection has the file open yet: closing f drops
		// no one's lock.
		f.Close()
		return nil, err
	}
	return &applier{f: f, conn: c.(*sqlite3.SQLiteConn), polite: applierPolite,
		forceful: max(min(time.Second, readerBusy/2), 10*time.Millisecond)}, nil
}

// close closes the applier's connection and file.
func (a *applier) close() error {
	err := a.conn.Close()
	if ferr := a.f.Close(); err == nil {
		err = ferr
	}
	return err
}

// begin takes the exclusive lock: first only when no reader holds the
// file, then, if readers keep overlapping, waiting for them while holding
// new ones off.
func (a *applier) begin(ctx context.Context) error {
	deadline := time.Now().Add(a.polite)
	for {
		_, err := a.conn.ExecContext(ctx, "BEGIN EXCLUSIVE", nil)
		if err == nil {
			return nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			if !isBusy(err) {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := a.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", a.forceful.Milliseconds()), nil); err != nil {
		return err
	}
	_, err := a.conn.ExecContext(ctx, "BEGIN EXCLUSIVE", nil)
	if _, rerr := a.conn.ExecContext(context.Background(), "PRAGMA busy_timeout=0", nil); err == nil && rerr != nil {
		a.conn.ExecContext(context.Background(), "ROLLBACK", nil)
		return rerr
	}
	if isBusy(err) {
		return fmt.Errorf("a read transaction held the database for over %v: %w", a.forceful, err)
	}
	return err
}

// exclusive runs write with readers held off, then bumps the change
// counter. An error before write is errNotWritten.
func (a *applier) exclusive(ctx context.Context, write func() error) error {
	if err := a.begin(ctx); err != nil {
		return fmt.Errorf("%w: hold readers off: %w", errNotWritten, err)
	}
	locked := time.Now()
	// The counter the readers last saw: the new one must differ from it,
	// whatever the pages written bring (a page 1 from the writer carries
	// the writer's counter, which may be the one before the last bump).
	var was [4]byte
	if _, err := a.f.ReadAt(was[:], 24); err != nil {
		a.conn.ExecContext(context.Background(), "ROLLBACK", nil)
		return fmt.Errorf("%w: read the header: %w", errNotWritten, err)
	}
	err := write()
	if berr := a.bump(binary.BigEndian.Uint32(was[:])); err == nil {
		err = berr
	}
	a.conn.ExecContext(context.Background(), "ROLLBACK", nil)
	a.held = time.Since(locked)
	return err
}

// writeDelta writes d's pages (already checked against the image) and
// truncates the file to d.Commit pages.
func (a *applier) writeDelta(ctx context.Context, d *snapshot.Delta) error {
	ps := int64(d.PageSize)
	return a.exclusive(ctx, func() error {
		for _, p := range d.Pages {
			if _, err := a.f.WriteAt(p.Data, int64(p.No-1)*ps); err != nil {
				return fmt.Errorf("delta %d: write page %d: %w", d.Seq, p.No, err)
			}
		}
		if err := a.f.Truncate(int64(d.Commit) * ps); err != nil {
			return fmt.Errorf("delta %d: truncate: %w", d.Seq, err)
		}
		return nil
	})
}

// copyFrom makes the working copy, whose image is old (nil: unknown), the
// database file at src, whose image is im: it copies page 1 and every
// page whose checksum differs, and truncates.
func (a *applier) copyFrom(ctx context.Context, src string, old, im *snapshot.Image) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%w: %w", errNotWritten, err)
	}
	defer in.Close()
	same := old != nil && old.PageSize == im.PageSize
	var runs [][2]int64 // first page index, count
	for i := range im.Sums {
		if i > 0 && same && i < len(old.Sums) && old.Sums[i] == im.Sums[i] {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1][0]+runs[n-1][1] == int64(i) {
			runs[n-1][1]++
		} else {
			runs = append(runs, [2]int64{int64(i), 1})
		}
	}
	ps := int64(im.PageSize)
	buf := make([]byte, max(ps, 1<<20))
	return a.exclusive(ctx, func() error {
		var was, now [4]byte
		if _, err := a.f.ReadAt(was[:], schemaCookieOffset); err != nil {
			return err
		}
		if _, err := in.ReadAt(now[:], schemaCookieOffset); err != nil {
			return err
		}
		for _, r := range runs {
			off, end := r[0]*ps, (r[0]+r[1])*ps
			for off < end {
				b := buf[:min(int64(len(buf)), end-off)]
				if _, err := in.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				if _, err := a.f.WriteAt(b, off); err != nil {
					return err
				}
				off += int64(len(b))
			}
		}
		if err := a.f.Truncate(int64(len(im.Sums)) * ps); err != nil {
			return err
		}
		if was == now {
			// Another database can have the same schema cookie as the
			// old one: connections would keep the old schema. A cookie
			// no writer reaches makes them read it again; the next
			// delta that changes the schema brings the writer's own
			// back (the image, kept apart, is the bucket's).
			binary.BigEndian.PutUint32(now[:], binary.BigEndian.Uint32(now[:])^0x40000000)
			if _, err := a.f.WriteAt(now[:], schemaCookieOffset); err != nil {
				return err
			}
		}
		return nil
	})
}

// schemaCookieOffset is where a database header holds the schema cookie,
// which every connection compares with the schema it parsed
// (https://sqlite.org/fileformat2.html#schema_cookie).
const schemaCookieOffset = 40

// bump sets the database header's file change counter (bytes 24–27) to
// one past was, the counter before the apply, so that other connections
// drop their caches, and sets version-valid-for (92–95) to it when the
// header's page count (28–31) is the file's, as SQLite itself would.
func (a *applier) bump(was uint32) error {
	var h [100]byte
	if _, err := a.f.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	st, err := a.f.Stat()
	if err != nil {
		return err
	}
	c := was + 1
	ps := int64(h[16])<<8 | int64(h[17])
	if ps == 1 {
		ps = 65536
	}
	valid := c
	if int64(binary.BigEndian.Uint32(h[28:32]))*ps != st.Size() {
		valid = c - 1 // SQLite then sizes the database from the file
	}
	binary.BigEndian.PutUint32(h[24:28], c)
	binary.BigEndian.PutUint32(h[92:96], valid)
	if _, err := a.f.WriteAt(h[24:28], 24); err != nil {
		return err
	}
	_, err = a.f.WriteAt(h[92:96], 92)
	return err
}
