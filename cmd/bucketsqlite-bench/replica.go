package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Targets of issue 13 (read replicas).
const (
	targetReplicaBytes     = int64(64 << 10)        // bytes a replica downloads for a one-row change
	targetReplicaRefresh   = 50 * time.Millisecond  // a refresh that downloads and applies it
	targetVisibleMedian    = 2 * time.Second        // writer's flush returned → visible to a replica query
	targetVisibleP99       = 3 * time.Second        // the same, p99
	targetReaderP99Ratio   = 2.0                    // reader p99 while deltas apply / idle
	targetIdleRequests     = 1.0                    // requests per refresh_interval, idle writer
	replicaInterval        = time.Second            // the replica's refresh_interval in the freshness rows
	replicaVisibleSamples  = 20                     // changes timed for the freshness rows
	readerInterval         = time.Millisecond       // the paced reader queries this often
	replicaWriterFlushEach = time.Second            // the writer's flush interval while readers are timed
	replicaPoll            = 500 * time.Microsecond // how often the freshness probe queries
)

// replicaRows: a writer in sync=log and a read replica of it, in this
// process, each with its own working copy. A one-row change: the bytes
// the replica downloads and the time a refresh takes, against a plain
// GetObject of the same delta; how soon after the writer's flush returns
// a replica query sees it with refresh_interval=1s; a reader's query p99
// while deltas are applied against its p99 while none are; and what an
// idle replica costs in requests.
func (b *bench) replicaRows(ctx context.Context) ([]row, error) {
	key, err := b.newKey(ctx, b.cfg.size, "replica")
	if err != nil {
		return nil, err
	}
	w, err := b.openDB(ctx, key, url.Values{"sync": {"log"}})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := w.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_log(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		return nil, err
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO bench_log(id, v) VALUES (1, 'x')"); err != nil {
		return nil, err
	}
	if _, err := driver.Flush(ctx, w); err != nil { // the base
		return nil, err
	}
	sb, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: b.bucket, Client: b.client})
	if err != nil {
		return nil, err
	}
	counted := faulty.New(sb) // counts the replica's requests
	cfg, err := driver.ParseDSN(b.dsn(key, url.Values{"replica": {"true"}, "refresh_interval": {replicaInterval.String()}}))
	if err != nil {
		return nil, err
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(counted))
	if err != nil {
		return nil, err
	}
	r := sql.OpenDB(c)
	defer r.Close()
	if err := r.PingContext(ctx); err != nil {
		return nil, err
	}
	rows, err := b.replicaChangeRows(ctx, w, r, key)
	if err != nil {
		return rows, err
	}
	vis, err := b.replicaVisibleRows(ctx, w, r)
	rows = append(rows, vis...)
	if err != nil {
		return rows, err
	}
	rd, err := b.replicaReaderRow(ctx, w, r)
	if err != nil {
		return rows, err
	}
	rows = append(rows, rd)
	idle, err := b.replicaIdleRow(ctx, r, counted)
	if err != nil {
		return rows, err
	}
	return append(rows, idle), nil
}

// replicaChangeRows: a one-row UPDATE flushed by the writer, then one
// Refresh of the replica; the bytes it downloaded and its duration,
// against a GetObject of the delta.
func (b *bench) replicaChangeRows(ctx context.Context, w, r *sql.DB, key string) ([]row, error) {
	var refreshT, getT, applyT []time.Duration
	var got []int64
	for run := range b.cfg.runs {
		if _, err := w.ExecContext(ctx, "UPDATE bench_log SET v = ? WHERE id = 1", fmt.Sprint("change ", run)); err != nil {
			return nil, err
		}
		if _, err := driver.Flush(ctx, w); err != nil {
			return nil, err
		}
		before, err := driver.GetStats(r)
		if err != nil {
			return nil, err
		}
		d, err := timed(func() error { return driver.Refresh(ctx, r) })
		if err != nil {
			return nil, err
		}
		after, err := driver.GetStats(r)
		if err != nil {
			return nil, err
		}
		if after.DeltasApplied == before.DeltasApplied {
			return nil, errors.New("a refresh after the writer's flush applied nothing")
		}
		refreshT, got = append(refreshT, d), append(got, after.BytesDownloaded-before.BytesDownloaded)
		applyT = append(applyT, after.LastApply)
		d, err = timed(func() error {
			out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(snapshot.LogKey(key, after.Seq))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.Copy(io.Discard, out.Body)
			return err
		})
		if err != nil {
			return nil, err
		}
		getT = append(getT, d)
	}
	refresh := ratioRow(fmt.Sprintf("replica refresh, one-row UPDATE (readers held off %s)", formatDuration(median(applyT))), median(refreshT), "GetObject of the delta", median(getT), 0, false)
	refresh.target, refresh.result = "≤ "+formatDuration(targetReplicaRefresh), verdict(median(refreshT) <= targetReplicaRefresh)
	return []row{
		{
			name: "replica download, one-row UPDATE", value: fmt.Sprintf("%.1f KiB", float64(median(got))/1024),
			baseName: "-", base: "-", ratio: "-", target: fmt.Sprintf("≤ %d KiB", targetReplicaBytes>>10),
			result: verdict(median(got) <= targetReplicaBytes),
		},
		refresh,
	}, nil
}

// replicaVisibleRows: the writer changes a row and flushes; a probe
// queries the replica every replicaPoll until it sees the change. The
// time from the flush's return to the first query that sees it, with the
// replica refreshing on its own every replicaInterval.
func (b *bench) replicaVisibleRows(ctx context.Context, w, r *sql.DB) ([]row, error) {
	n := replicaVisibleSamples
	if b.cfg.quick {
		n = 3
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	var lats []time.Duration
	for i := range n {
		token := fmt.Sprint("visible ", i, " ", rng.Uint64())
		if _, err := w.ExecContext(ctx, "UPDATE bench_log SET v = ? WHERE id = 1", token); err != nil {
			return nil, err
		}
		if _, err := driver.Flush(ctx, w); err != nil {
			return nil, err
		}
		flushed := time.Now()
		deadline := flushed.Add(30 * time.Second)
		for {
			var v string
			if err := r.QueryRowContext(ctx, "SELECT v FROM bench_log WHERE id = 1").Scan(&v); err != nil {
				return nil, err
			}
			if v == token {
				lats = append(lats, time.Since(flushed))
				break
			}
			if time.Now().After(deadline) {
				return nil, errors.New("a change never reached the replica")
			}
			time.Sleep(replicaPoll)
		}
		// The next change lands at a random point of the refresh cycle.
		time.Sleep(time.Duration(rng.Int64N(int64(replicaInterval))))
	}
	med, p99 := median(lats), percentile(lats, 0.99)
	return []row{
		{name: fmt.Sprintf("visible on replica after flush, median of %d", n), value: formatDuration(med),
			baseName: "refresh_interval", base: formatDuration(replicaInterval), ratio: formatRatio(float64(med) / float64(replicaInterval)),
			target: "≤ " + formatDuration(targetVisibleMedian), result: verdict(med <= targetVisibleMedian)},
		{name: fmt.Sprintf("visible on replica after flush, p99 of %d", n), value: formatDuration(p99),
			baseName: "refresh_interval", base: formatDuration(replicaInterval), ratio: formatRatio(float64(p99) / float64(replicaInterval)),
			target: "≤ " + formatDuration(targetVisibleP99), result: verdict(p99 <= targetVisibleP99)},
	}, nil
}

// replicaReaderRow: a reader queries the replica every readerInterval
// (a point lookup in events) while the writer commits every millisecond;
// its p99 while the writer flushes every second and the replica applies
// each delta, against its p99 while the writer does not flush.
func (b *bench) replicaReaderRow(ctx context.Context, w, r *sql.DB) (row, error) {
	if _, err := w.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_writes(id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		return row{}, err
	}
	if _, err := driver.Flush(ctx, w); err != nil {
		return row{}, err
	}
	var maxID int64
	if err := r.QueryRowContext(ctx, "SELECT max(id) FROM events").Scan(&maxID); err != nil {
		return row{}, err
	}
	span := 10 * time.Second
	if b.cfg.quick {
		span = time.Second
	}
	var idle, busy []time.Duration
	var applied int64
	// Each span starts with the writer's state flushed and applied, so
	// that only its own applies land in it.
	settle := func() error {
		if _, err := driver.Flush(ctx, w); err != nil {
			return err
		}
		return driver.Refresh(ctx, r)
	}
	for run := range b.cfg.runs {
		err := alternate(run, func() error {
			if err := settle(); err != nil {
				return err
			}
			lats, err := readWhile(ctx, r, maxID, func() error {
				_, err := paced(ctx, w, func() error { time.Sleep(span); return nil })
				return err
			})
			idle = append(idle, percentile(lats, 0.99))
			return err
		}, func() error {
			if err := settle(); err != nil {
				return err
			}
			before, _ := driver.GetStats(r)
			lats, err := readWhile(ctx, r, maxID, func() error {
				_, err := paced(ctx, w, func() error {
					for end := time.Now().Add(span); time.Now().Before(end); {
						time.Sleep(replicaWriterFlushEach)
						if _, err := driver.Flush(ctx, w); err != nil {
							return err
						}
					}
					return nil
				})
				return err
			})
			after, _ := driver.GetStats(r)
			applied += after.DeltasApplied - before.DeltasApplied
			busy = append(busy, percentile(lats, 0.99))
			return err
		})
		if err != nil {
			return row{}, err
		}
	}
	name := fmt.Sprintf("replica query p99, deltas applied (%d applies)", applied)
	return ratioRow(name, median(busy), "query p99, no deltas", median(idle), targetReaderP99Ratio, false), nil
}

// readWhile queries r every readerInterval, a point lookup of a random
// event, for as long as during runs, and returns the latencies.
func readWhile(ctx context.Context, r *sql.DB, maxID int64, during func() error) ([]time.Duration, error) {
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		lats []time.Duration
		rerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		next := time.Now()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if now := time.Now(); next.After(now) {
				time.Sleep(next.Sub(now))
			} else {
				next = now
			}
			next = next.Add(readerInterval)
			start := time.Now()
			var ts int64
			err := r.QueryRowContext(ctx, "SELECT ts FROM events WHERE id = ?", 1+rng.Int64N(max(maxID, 1))).Scan(&ts)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				rerr = err
				return
			}
			lats = append(lats, time.Since(start))
		}
	}()
	err := during()
	close(stop)
	wg.Wait()
	if err == nil {
		err = rerr
	}
	if err == nil && len(lats) == 0 {
		err = errors.New("the reader made no query")
	}
	return lats, err
}

// replicaIdleRow: the requests the replica makes while the writer is
// idle, per refresh_interval.
func (b *bench) replicaIdleRow(ctx context.Context, r *sql.DB, counted *faulty.Bucket) (row, error) {
	intervals := 30
	if b.cfg.quick {
		intervals = 3
	}
	if err := driver.Refresh(ctx, r); err != nil { // caught up
		return row{}, err
	}
	before := counted.Calls(faulty.Any)
	time.Sleep(time.Duration(intervals) * replicaInterval)
	n := counted.Calls(faulty.Any) - before
	per := float64(n) / float64(intervals)
	return row{
		name: fmt.Sprintf("replica requests per refresh_interval, idle writer (%d s)", intervals), value: fmt.Sprintf("%.2f", per),
		baseName: "-", base: "-", ratio: "-", target: fmt.Sprintf("≤ %.0f", targetIdleRequests),
		// A tick more or less at either end of the span is not a cost.
		result: verdict(float64(n) <= targetIdleRequests*float64(intervals)+1),
	}, nil
}
