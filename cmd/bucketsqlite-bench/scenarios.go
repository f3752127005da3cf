package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Targets of issue 6.
const (
	targetFlushRatio   = 1.5                   // flush / PutObject
	targetRestoreRatio = 1.5                   // restore / (GetObject + integrity_check)
	targetIdleFlush    = time.Millisecond      // an idle flush, at any size
	targetInsertRatio  = 0.95                  // bucketsqlite inserts/s / go-sqlite3 inserts/s
	targetCommitRatio  = 3.0                   // commit p99 during a flush / idle p99
	targetRSSRaise     = int64(64 << 20)       // peak RSS raise of a flush or restore
	idleFlushCalls     = 1000                  // idle flushes timed per run
	writerInterval     = time.Millisecond      // the paced writer commits this often
	flushSettle        = 20 * time.Millisecond // writer time before a flush starts
)

// scenario is a named group of rows.
type scenario struct {
	name string
	run  func(context.Context) ([]row, error)
}

func (b *bench) scenarios() []scenario {
	return []scenario{
		{"flush", b.flushRows},
		{"idle", b.idleRows},
		{"restore", b.restoreRows},
		{"insert", b.insertRows},
		{"commit", b.commitRows},
		{"rss", b.rssRows},
		{"log", b.logRows},
		{"replica", b.replicaRows},
	}
}

// runAll runs the selected scenarios. A scenario that fails gets an
// ERROR row; the others still run, and the first error is returned.
func (b *bench) runAll(ctx context.Context) ([]row, error) {
	var (
		rows  []row
		first error
	)
	for _, s := range b.scenarios() {
		if b.cfg.only != nil && !b.cfg.only.MatchString(s.name) {
			continue
		}
		b.logf("scenario %s", s.name)
		rs, err := s.run(ctx)
		rows = append(rows, rs...)
		if err != nil {
			rows = append(rows, row{name: s.name, value: "ERROR", result: err.Error()})
			if first == nil {
				first = fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	return rows, first
}

// alternate runs base and subject once each, base first on even runs and
// second on odd ones, so that neither always sees a warmer machine.
func alternate(r int, base, subject func() error) error {
	first, second := base, subject
	if r%2 == 1 {
		first, second = subject, base
	}
	if err := first(); err != nil {
		return err
	}
	return second()
}

// flushRows: a full flush of a changed database through the driver
// against a PutObject of the same bytes; and with keep_previous, which
// first copies the old snapshot to KEY.prev on the server, against a
// CopyObject and a PutObject.
func (b *bench) flushRows(ctx context.Context) ([]row, error) {
	seed := b.seeds[b.cfg.size]
	// Untimed: the object keep_previous's baseline copies, and a warm
	// connection.
	if err := b.plainPut(ctx, seed.path, "plain-put.db"); err != nil {
		return nil, err
	}
	var rows []row
	for _, keep := range []bool{false, true} {
		key, err := b.newKey(ctx, b.cfg.size, "flush")
		if err != nil {
			return rows, err
		}
		db, err := b.openDB(ctx, key, url.Values{"keep_previous": {fmt.Sprint(keep)}})
		if err != nil {
			return rows, err
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE TABLE bench_writes(id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
			return rows, err
		}
		var subj, base []time.Duration
		for r := range b.cfg.runs {
			err := alternate(r, func() error {
				d, err := timed(func() error {
					if keep {
						if err := b.plainCopy(ctx, "plain-put.db", "plain-put.db.prev"); err != nil {
							return err
						}
					}
					return b.plainPut(ctx, seed.path, "plain-put.db")
				})
				base = append(base, d)
				return err
			}, func() error {
				if _, err := db.ExecContext(ctx, "INSERT INTO bench_writes(v) VALUES (?)", fmt.Sprint(r)); err != nil {
					return err
				}
				var res driver.FlushResult
				d, err := timed(func() (err error) { res, err = driver.Flush(ctx, db); return err })
				if err == nil && !res.Uploaded {
					err = errors.New("flush of a changed database uploaded nothing")
				}
				subj = append(subj, d)
				return err
			})
			if err != nil {
				return rows, err
			}
		}
		name, baseName := fmt.Sprintf("flush %s, changed", formatSize(b.cfg.size)), "PutObject of the file"
		if keep {
			name, baseName = name+", keep_previous", "CopyObject + PutObject"
		}
		rows = append(rows, ratioRow(name, median(subj), baseName, median(base), targetFlushRatio, false))
	}
	return rows, nil
}

// idleRows: a flush with nothing committed since the last one, at every
// size, the sizes taking turns within each run; the larger sizes are
// compared with the smallest.
func (b *bench) idleRows(ctx context.Context) ([]row, error) {
	var sizes []int64
	var dbs []*sql.DB
	for _, size := range []int64{b.cfg.small, b.cfg.size, b.cfg.large} {
		if size == 0 {
			continue
		}
		key, err := b.newKey(ctx, size, "idle")
		if err != nil {
			return nil, err
		}
		db, err := b.openDB(ctx, key, nil)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE TABLE bench_writes(id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
			return nil, err
		}
		if _, err := driver.Flush(ctx, db); err != nil {
			return nil, err
		}
		sizes, dbs = append(sizes, size), append(dbs, db)
	}
	// Each run's figure is the median call: a GC pause or a descheduling
	// that lands on one call does not move it.
	per := make([][]time.Duration, len(dbs))
	calls := make([]time.Duration, idleFlushCalls)
	for r := range b.cfg.runs {
		for k := range dbs {
			j := (k + r) % len(dbs)
			for i := range calls {
				var res driver.FlushResult
				d, err := timed(func() (err error) { res, err = driver.Flush(ctx, dbs[j]); return err })
				if err != nil {
					return nil, err
				}
				if !res.Idle {
					return nil, errors.New("a flush with nothing committed was not idle")
				}
				calls[i] = d
			}
			per[j] = append(per[j], median(calls))
		}
	}
	var rows []row
	ref := median(per[0])
	for j, size := range sizes {
		v := median(per[j])
		r := row{
			name:   fmt.Sprintf("idle flush %s", formatSize(size)),
			value:  formatDuration(v),
			target: "< " + formatDuration(targetIdleFlush),
			result: verdict(v < targetIdleFlush),
		}
		if j > 0 {
			r.baseName = "idle flush " + formatSize(sizes[0])
			r.base = formatDuration(ref)
			r.ratio = formatRatio(float64(v) / float64(ref))
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// restoreRows: snapshot.RestoreFile with the default full check, and the
// driver's first connection, against a GetObject into a file followed by
// PRAGMA integrity_check.
func (b *bench) restoreRows(ctx context.Context) ([]row, error) {
	seed := b.seeds[b.cfg.size]
	var file, conn, base []time.Duration
	steps := []func() error{
		func() error {
			p := b.tempPath("plain-get")
			defer removeDB(p)
			d, err := timed(func() error {
				if err := b.plainGet(ctx, seed.key, p); err != nil {
					return err
				}
				return integrityCheck(ctx, p)
			})
			base = append(base, d)
			return err
		},
		func() error {
			p := b.tempPath("restore")
			defer removeDB(p)
			d, err := timed(func() error {
				info, err := snapshot.RestoreFile(ctx, b.bk, seed.key, p, snapshot.RestoreOptions{})
				if err == nil && !info.Found {
					err = errors.New("restore found no snapshot")
				}
				return err
			})
			file = append(file, d)
			return err
		},
		func() error {
			c, err := b.connector(seed.key, nil)
			if err != nil {
				return err
			}
			db := sql.OpenDB(c)
			d, err := timed(func() error { return db.PingContext(ctx) })
			conn = append(conn, d)
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	for r := range b.cfg.runs {
		for i := range steps {
			if err := steps[(i+r)%len(steps)](); err != nil {
				return nil, err
			}
		}
	}
	baseName := "GetObject + integrity_check"
	size := formatSize(b.cfg.size)
	return []row{
		ratioRow("restore "+size+", RestoreFile", median(file), baseName, median(base), targetRestoreRatio, false),
		ratioRow("restore "+size+", driver first Ping", median(conn), baseName, median(base), targetRestoreRatio, false),
	}, nil
}

// integrityCheck runs PRAGMA integrity_check on the database at path.
func integrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", snapshot.FileDSN(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity_check: %s", res)
	}
	return nil
}

// insertRows: autocommit inserts through sql.Open("bucketsqlite", ...)
// against sql.Open("sqlite3", ...), same pragmas, both on a file in the
// temp directory.
func (b *bench) insertRows(ctx context.Context) ([]row, error) {
	// sql.Open takes no client: the DSN's endpoint, and the credentials
	// from the environment.
	os.Setenv("AWS_ACCESS_KEY_ID", b.srv.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", b.srv.SecretKey)
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	b.keys++
	bdb, err := sql.Open("bucketsqlite", b.dsn(fmt.Sprintf("insert-%d.db", b.keys), nil))
	if err != nil {
		return nil, err
	}
	defer bdb.Close()
	dir, err := os.MkdirTemp("", "bucketsqlite-bench-plain-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pdb, err := sql.Open("sqlite3", snapshot.FileDSN(dir+"/db.sqlite", sqlitePragmas))
	if err != nil {
		return nil, err
	}
	defer pdb.Close()
	for _, db := range []*sql.DB{bdb, pdb} {
		if _, err := db.ExecContext(ctx, "CREATE TABLE kv(id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL)"); err != nil {
			return nil, err
		}
	}
	for _, db := range []*sql.DB{bdb, pdb} {
		var out []string
		for _, q := range []string{"synchronous", "journal_mode", "busy_timeout", "cache_size", "wal_autocheckpoint", "locking_mode", "page_size", "mmap_size", "temp_store", "foreign_keys", "secure_delete", "auto_vacuum", "cache_spill"} {
			var v string
			db.QueryRow("PRAGMA " + q).Scan(&v)
			out = append(out, q+"="+v)
		}
		b.logf("DEBUG %v", out)
	}
	val := make([]byte, 100)
	for i := range val {
		val[i] = byte(i * 7)
	}
	inserts := func(db *sql.DB, d *time.Duration) func() error {
		return func() error {
			start := time.Now()
			for i := range b.cfg.inserts {
				if _, err := db.ExecContext(ctx, "INSERT INTO kv(k, v) VALUES (?, ?)", fmt.Sprintf("key-%d", i), val); err != nil {
					return err
				}
			}
			*d += time.Since(start)
			return nil
		}
	}
	// An untimed round each first: both files and their WALs exist and
	// are warm before anything is timed.
	var warm time.Duration
	if err := alternate(0, inserts(pdb, &warm), inserts(bdb, &warm)); err != nil {
		return nil, err
	}
	const rounds = 8 // alternating, so that drift falls on both sides
	var subj, base []float64
	for r := range b.cfg.runs {
		var bd, pd time.Duration
		for i := range rounds {
			if err := alternate(r+i, inserts(pdb, &pd), inserts(bdb, &bd)); err != nil {
				return nil, err
			}
		}
		n := float64(rounds * b.cfg.inserts)
		subj = append(subj, n/bd.Seconds())
		base = append(base, n/pd.Seconds())
	}
	s, p := median(subj), median(base)
	return []row{{
		name:     "inserts/s, bucketsqlite",
		value:    fmt.Sprintf("%.0f/s", s),
		baseName: "go-sqlite3, same pragmas",
		base:     fmt.Sprintf("%.0f/s", p),
		ratio:    formatRatio(s / p),
		target:   "≥ " + formatRatio(targetInsertRatio),
		result:   verdict(s/p >= targetInsertRatio),
	}}, nil
}

// commitRows: a writer commits every millisecond; its p99 commit latency
// while a full flush runs, against its p99 with no flush; with the
// default temporary working copy, and with a persistent one (local=),
// whose commit hook also keeps a dirty flag on disk.
func (b *bench) commitRows(ctx context.Context) ([]row, error) {
	var rows []row
	for _, persistent := range []bool{false, true} {
		r, err := b.commitRow(ctx, persistent)
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func (b *bench) commitRow(ctx context.Context, persistent bool) (row, error) {
	key, err := b.newKey(ctx, b.cfg.size, "commit")
	if err != nil {
		return row{}, err
	}
	var params url.Values
	if persistent {
		local := b.tempPath("local")
		defer func() {
			removeDB(local)
			// The driver's sync state and lock beside a persistent working copy.
			os.Remove(local + "-bucketsqlite.json")
			os.Remove(local + "-bucketsqlite.lock")
		}()
		params = url.Values{"local": {local}}
	}
	db, err := b.openDB(ctx, key, params)
	if err != nil {
		return row{}, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_writes(id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		return row{}, err
	}
	var idle, busy []time.Duration
	var commits []float64
	for range b.cfg.runs {
		lats, err := paced(ctx, db, func() error {
			time.Sleep(time.Duration(b.cfg.window) * time.Millisecond)
			return nil
		})
		if err != nil {
			return row{}, err
		}
		idle = append(idle, percentile(lats, 0.99))
		lats, err = paced(ctx, db, func() error {
			time.Sleep(flushSettle)
			res, err := driver.Flush(ctx, db)
			if err == nil && !res.Uploaded {
				err = errors.New("flush of a changed database uploaded nothing")
			}
			return err
		})
		if err != nil {
			return row{}, err
		}
		busy = append(busy, percentile(lats, 0.99))
		commits = append(commits, float64(len(lats)))
	}
	name := fmt.Sprintf("commit p99 during a %s flush", formatSize(b.cfg.size))
	if persistent {
		name += ", local="
	}
	r := ratioRow(name, median(busy), "commit p99, no flush", median(idle), targetCommitRatio, false)
	r.name += fmt.Sprintf(" (%.0f commits)", median(commits))
	return r, nil
}

// paced commits one small insert every writerInterval while during runs,
// and returns the commits' latencies.
func paced(ctx context.Context, db *sql.DB, during func() error) ([]time.Duration, error) {
	stop := make(chan struct{})
	done := make(chan error, 1)
	var lats []time.Duration
	go func() {
		payload := make([]byte, 200)
		next := time.Now()
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if now := time.Now(); next.After(now) {
				time.Sleep(next.Sub(now))
			} else {
				next = now // behind: no burst to catch up
			}
			next = next.Add(writerInterval)
			start := time.Now()
			if _, err := db.ExecContext(ctx, "INSERT INTO bench_writes(v) VALUES (?)", payload); err != nil {
				done <- err
				return
			}
			lats = append(lats, time.Since(start))
		}
	}()
	err := during()
	close(stop)
	if werr := <-done; err == nil {
		err = werr
	}
	if err == nil && len(lats) == 0 {
		err = errors.New("the writer committed nothing")
	}
	return lats, err
}

// median returns the middle value (the mean of the two middle ones).
func median[T time.Duration | float64 | int64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th quantile (nearest rank).
func percentile(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
