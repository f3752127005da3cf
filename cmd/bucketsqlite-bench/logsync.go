package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Targets of issue 12 (incremental sync).
const (
	targetDeltaBytes     = int64(64 << 10) // bytes a one-row UPDATE's flush uploads
	targetDeltaVsFull    = 0.01            // log flush / full flush of the same database (100× faster)
	targetDeltaVsPut     = 3.0             // log flush / PutObject of the same bytes
	targetLogRestore     = 1.2             // restore of base + deltas / restore of the compacted base
	logFlushPairs        = 21              // log flushes (each beside a PutObject) the flush rows take the median of
	logRestoreDeltas     = 100             // deltas behind the base in the restore row
	logRestoreWritesEach = 20              // rows each of those deltas changes
)

// logRows: sync=log. A one-row UPDATE then a flush, against a full flush
// of the same database and a plain PutObject of the delta's bytes; the
// bytes it uploads; and a restore of a base with 100 deltas against the
// restore of the same database compacted.
func (b *bench) logRows(ctx context.Context) ([]row, error) {
	size := formatSize(b.cfg.size)
	logKey, err := b.newKey(ctx, b.cfg.size, "log")
	if err != nil {
		return nil, err
	}
	logDB, err := b.openDB(ctx, logKey, url.Values{"sync": {"log"}})
	if err != nil {
		return nil, err
	}
	defer logDB.Close()
	fullKey, err := b.newKey(ctx, b.cfg.size, "logfull")
	if err != nil {
		return nil, err
	}
	fullDB, err := b.openDB(ctx, fullKey, nil)
	if err != nil {
		return nil, err
	}
	defer fullDB.Close()
	for _, db := range []*sql.DB{logDB, fullDB} {
		if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_log(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
			return nil, err
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO bench_log(id, v) VALUES (1, 'x')"); err != nil {
			return nil, err
		}
		// Untimed: the log's first flush is its base.
		if _, err := driver.Flush(ctx, db); err != nil {
			return nil, err
		}
	}
	update := func(db *sql.DB, r int) error {
		_, err := db.ExecContext(ctx, "UPDATE bench_log SET v = ? WHERE id = 1", fmt.Sprint("run ", r))
		return err
	}
	// The log flushes and their PutObjects first, in alternating order;
	// then the full flushes: each full flush leaves a base's worth of
	// writes for the disk to catch up on, which would land on whatever is
	// measured next.
	var logT, fullT, putT []time.Duration
	var sent []int64
	lastSent := int64(256)
	settle()
	// A log flush takes milliseconds, and the server's own latency varies
	// by as much: more pairs than -runs give a steady median.
	for r := range max(b.cfg.runs, logFlushPairs) {
		if err := update(logDB, r); err != nil {
			return nil, err
		}
		err := alternate(r, func() error {
			body := bytes.Repeat([]byte{0x5a}, int(lastSent))
			d, err := timed(func() error {
				_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(b.bucket), Key: aws.String("plain-delta"), Body: bytes.NewReader(body),
					ContentLength: aws.Int64(int64(len(body))),
				})
				return err
			})
			putT = append(putT, d)
			return err
		}, func() error {
			var res driver.FlushResult
			d, err := timed(func() (err error) { res, err = driver.Flush(ctx, logDB); return err })
			if err == nil && (!res.Uploaded || res.BytesWritten == 0) {
				err = errors.New("a log flush of a changed database uploaded nothing")
			}
			logT, sent, lastSent = append(logT, d), append(sent, res.BytesWritten), res.BytesWritten
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	settle()
	for r := range b.cfg.runs {
		if err := update(fullDB, r); err != nil {
			return nil, err
		}
		d, err := timed(func() error { _, err := driver.Flush(ctx, fullDB); return err })
		if err != nil {
			return nil, err
		}
		fullT = append(fullT, d)
	}
	rows := []row{
		ratioRow("log flush "+size+", one-row UPDATE", median(logT), "full flush, same change", median(fullT), targetDeltaVsFull, false),
		ratioRow("log flush "+size+", one-row UPDATE", median(logT), "PutObject of the delta bytes", median(putT), targetDeltaVsPut, false),
		{
			name: "bytes uploaded, one-row UPDATE", value: fmt.Sprintf("%.1f KiB", float64(median(sent))/1024),
			baseName: "-", base: "-", ratio: "-", target: fmt.Sprintf("≤ %d KiB", targetDeltaBytes>>10),
			result: verdict(median(sent) <= targetDeltaBytes),
		},
	}
	restore, err := b.logRestoreRow(ctx, logDB, logKey)
	if err != nil {
		return rows, err
	}
	rows = append(rows, restore)
	steady, err := b.logSteadyRow(ctx)
	if err != nil {
		return rows, err
	}
	rows = append(rows, steady)
	pages, err := b.logPagesRow(ctx)
	if err != nil {
		return rows, err
	}
	return append(rows, pages), nil
}

// targetLogCommitRatio: commit p99 while flushing deltas every second, to
// commit p99 with no flushing.
const targetLogCommitRatio = 2.0

// logSteadyRow: a writer commits every millisecond for a while, once with
// a sync=log flush every second, once with none; their commit p99.
func (b *bench) logSteadyRow(ctx context.Context) (row, error) {
	key, err := b.newKey(ctx, b.cfg.size, "logsteady")
	if err != nil {
		return row{}, err
	}
	db, err := b.openDB(ctx, key, url.Values{"sync": {"log"}})
	if err != nil {
		return row{}, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_writes(id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		return row{}, err
	}
	if _, err := driver.Flush(ctx, db); err != nil { // the base
		return row{}, err
	}
	span := 10 * time.Second
	if b.cfg.quick {
		span = time.Second
	}
	var idle, busy []time.Duration
	var flushes, bytesSent int64
	for range b.cfg.runs {
		lats, err := paced(ctx, db, func() error { time.Sleep(span); return nil })
		if err != nil {
			return row{}, err
		}
		idle = append(idle, percentile(lats, 0.99))
		if _, err := driver.Flush(ctx, db); err != nil { // what the idle span wrote
			return row{}, err
		}
		lats, err = paced(ctx, db, func() error {
			deadline := time.Now().Add(span)
			for time.Now().Before(deadline) {
				time.Sleep(time.Second)
				res, err := driver.Flush(ctx, db)
				if err != nil {
					return err
				}
				flushes++
				bytesSent += res.BytesWritten
			}
			return nil
		})
		if err != nil {
			return row{}, err
		}
		busy = append(busy, percentile(lats, 0.99))
	}
	r := ratioRow("commit p99, log flush every 1s", median(busy), "commit p99, no flush", median(idle), targetLogCommitRatio, false)
	if flushes > 0 {
		r.name += fmt.Sprintf(" (%.1f KiB a flush)", float64(bytesSent)/float64(flushes)/1024)
	}
	return r, nil
}

// logRestoreRow writes logRestoreDeltas deltas behind logKey's base, then
// compares restoring base + deltas with restoring the same database as
// one snapshot.
func (b *bench) logRestoreRow(ctx context.Context, db *sql.DB, logKey string) (row, error) {
	// Start from a fresh base: the first flush after the seed compacts.
	for i := range logRestoreDeltas {
		for j := range logRestoreWritesEach {
			if _, err := db.ExecContext(ctx, "INSERT INTO bench_log(v) VALUES (?)", fmt.Sprint(i, "/", j)); err != nil {
				return row{}, err
			}
		}
		if _, err := driver.Flush(ctx, db); err != nil {
			return row{}, err
		}
	}
	// The same database as one snapshot.
	compacted := "logcompacted.db"
	p := b.tempPath("compacted")
	defer removeDB(p)
	if _, err := snapshot.RestoreFile(ctx, b.bk, logKey, p, snapshot.RestoreOptions{}); err != nil {
		return row{}, err
	}
	if err := b.plainPut(ctx, p, compacted); err != nil {
		return row{}, err
	}
	var withLog, plain []time.Duration
	var deltas int
	settle()
	for r := range b.cfg.runs {
		err := alternate(r, func() error {
			q := b.tempPath("plain-restore")
			defer removeDB(q)
			d, err := timed(func() error {
				_, err := snapshot.RestoreFile(ctx, b.bk, compacted, q, snapshot.RestoreOptions{})
				return err
			})
			plain = append(plain, d)
			return err
		}, func() error {
			q := b.tempPath("log-restore")
			defer removeDB(q)
			d, err := timed(func() error {
				info, err := snapshot.RestoreFile(ctx, b.bk, logKey, q, snapshot.RestoreOptions{})
				deltas = info.Deltas
				return err
			})
			withLog = append(withLog, d)
			return err
		})
		if err != nil {
			return row{}, err
		}
	}
	name := fmt.Sprintf("restore %s, base + %d deltas", formatSize(b.cfg.size), deltas)
	return ratioRow(name, median(withLog), "restore of the compacted base", median(plain), targetLogRestore, false), nil
}
