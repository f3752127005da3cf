package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// targetLogPages: pages a log flush uploads, over the distinct pages
// changed since the previous flush.
const targetLogPages = 1.2

// logPagesRow: a writer commits every millisecond for a minute (updates
// to a hot set of rows, and inserts), with a sync=log flush every second.
// Then every delta of that minute is replayed on the state before it, and
// its pages are compared with the pages they replace: a page whose
// content did not change was shipped for nothing. The row is the pages
// shipped over the pages that really changed.
func (b *bench) logPagesRow(ctx context.Context) (row, error) {
	name := "log flush pages / distinct pages changed"
	key, err := b.newKey(ctx, b.cfg.size, "logpages")
	if err != nil {
		return row{}, err
	}
	db, err := b.openDB(ctx, key, url.Values{"sync": {"log"}})
	if err != nil {
		return row{}, err
	}
	defer db.Close()
	if _, err := driver.Flush(ctx, db); err != nil { // the base
		return row{}, err
	}
	before := b.tempPath("logpages")
	defer removeDB(before)
	info, err := snapshot.RestoreFile(ctx, b.bk, key, before, snapshot.RestoreOptions{})
	if err != nil {
		return row{}, err
	}
	var maxID int64
	if err := db.QueryRowContext(ctx, "SELECT max(id) FROM events").Scan(&maxID); err != nil {
		return row{}, err
	}
	span := time.Minute
	if b.cfg.quick {
		span = 2 * time.Second
	}
	flushes, err := hotWriter(ctx, db, maxID, func() (int, error) {
		n := 0
		for deadline := time.Now().Add(span); time.Now().Before(deadline); n++ {
			time.Sleep(time.Second)
			if _, err := driver.Flush(ctx, db); err != nil {
				return n, err
			}
		}
		return n, nil
	})
	if err != nil {
		return row{}, err
	}
	if _, err := driver.Flush(ctx, db); err != nil {
		return row{}, err
	}
	shipped, changed, deltas, err := replayLog(ctx, b.bk, key, before, info.Seq)
	if err != nil {
		return row{}, err
	}
	if changed == 0 {
		return row{}, errors.New("the writer changed no page")
	}
	ratio := float64(shipped) / float64(changed)
	return row{
		name:     fmt.Sprintf("%s (%d flushes, %d deltas)", name, flushes, deltas),
		value:    fmt.Sprintf("%d pages", shipped),
		baseName: "distinct pages changed", base: fmt.Sprintf("%d pages", changed),
		ratio: formatRatio(ratio), target: "≤ " + formatRatio(targetLogPages),
		result: verdict(ratio <= targetLogPages),
	}, nil
}

// hotWriter commits every writerInterval, alternately an update of one of
// the first 2,000 rows of events and an insert, while during runs.
func hotWriter(ctx context.Context, db *sql.DB, maxID int64, during func() (int, error)) (int, error) {
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		body := make([]byte, 120)
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-time.After(writerInterval):
			}
			var err error
			if i%2 == 0 {
				_, err = db.ExecContext(ctx, "UPDATE events SET ts = ts + 1 WHERE id = ?", 1+rng.Int64N(min(maxID, 2000)))
			} else {
				_, err = db.ExecContext(ctx, "INSERT INTO events(ts, kind, body) VALUES (?, 'hot', ?)", time.Now().UnixNano(), body)
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	n, err := during()
	close(stop)
	if werr := <-done; err == nil {
		err = werr
	}
	return n, err
}

// replayLog applies the deltas of key after seq to the database file at
// path (the state at seq) one by one, and counts the pages they ship and
// those among them whose content differs from the page they replace (or
// that extend the database).
func replayLog(ctx context.Context, bk bucket.Bucket, key, path string, seq uint64) (shipped, changed, deltas int, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	im, err := snapshot.FileImage(path)
	if err != nil {
		return 0, 0, 0, err
	}
	for n := seq + 1; ; n++ {
		var buf memFile
		_, err := bk.Download(ctx, snapshot.LogKey(key, n), &buf)
		if errors.Is(err, bucket.ErrNotFound) {
			return shipped, changed, deltas, nil
		}
		if err != nil {
			return 0, 0, 0, err
		}
		d, err := snapshot.DecodeDelta(bytes.NewReader(buf.b))
		if err != nil {
			return 0, 0, 0, err
		}
		for _, p := range d.Pages {
			shipped++
			if p.No > im.Pages() || im.Sums[p.No-1] != snapshot.PageChecksum(p.No, p.Data) {
				changed++
			}
		}
		if err := snapshot.ApplyDelta(f, im, d); err != nil {
			return 0, 0, 0, err
		}
		deltas++
	}
}

// memFile is an io.WriterAt into memory.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}
