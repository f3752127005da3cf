//go:build cgo

package bucketprom_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/metrics/bucketprom"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// open opens a database in the mem:// bucket named after the test, with
// no periodic flushes, and writes one row to it.
func open(t *testing.T, name string) *sql.DB {
	t.Helper()
	t.Cleanup(func() { bucket.ForgetMem(name) })
	db := openKey(t, name, "")
	exec(t, db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)")
	return db
}

// openKey opens mem://name/app.db, with more DSN parameters if params
// is not empty, without writing to it.
func openKey(t *testing.T, name, params string) *sql.DB {
	t.Helper()
	if params != "" {
		params = "&" + params
	}
	db, err := sql.Open("bucketsqlite", "mem://"+name+"/app.db?flush_interval=0"+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}

func flush(t *testing.T, db *sql.DB) driver.FlushResult {
	t.Helper()
	res, err := driver.Flush(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func stats(t *testing.T, db *sql.DB) driver.Stats {
	t.Helper()
	st, err := driver.GetStats(db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// counters are the series whose values a test knows exactly.
var counters = []string{
	"bucketsqlite_flushes_total",
	"bucketsqlite_uploads_total",
	"bucketsqlite_skips_total",
	"bucketsqlite_flush_failures_total",
	"bucketsqlite_uploaded_bytes_total",
	"bucketsqlite_last_flush_failed",
	"bucketsqlite_conflicted",
	"bucketsqlite_restored",
	"bucketsqlite_restored_bytes",
}

// expected is the text exposition of counters for one database.
func expected(db string, flushes, uploads, skips, failures, bytes, lastFailed, conflicted, restored, restoredBytes int64) string {
	return fmt.Sprintf(`
# HELP bucketsqlite_conflicted 1 if a flush found the snapshot changed by another writer (periodic flushing has stopped until the database is reopened), else 0.
# TYPE bucketsqlite_conflicted gauge
bucketsqlite_conflicted{database=%[1]q} %[8]d
# HELP bucketsqlite_flush_failures_total Flushes that returned an error.
# TYPE bucketsqlite_flush_failures_total counter
bucketsqlite_flush_failures_total{database=%[1]q} %[5]d
# HELP bucketsqlite_flushes_total Flush attempts: periodic, explicit and final.
# TYPE bucketsqlite_flushes_total counter
bucketsqlite_flushes_total{database=%[1]q} %[2]d
# HELP bucketsqlite_last_flush_failed 1 if the last flush returned an error, else 0.
# TYPE bucketsqlite_last_flush_failed gauge
bucketsqlite_last_flush_failed{database=%[1]q} %[7]d
# HELP bucketsqlite_restored 1 if the first connection restored a snapshot from the bucket, else 0.
# TYPE bucketsqlite_restored gauge
bucketsqlite_restored{database=%[1]q} %[9]d
# HELP bucketsqlite_restored_bytes Size of the restored snapshot, in bytes.
# TYPE bucketsqlite_restored_bytes gauge
bucketsqlite_restored_bytes{database=%[1]q} %[10]d
# HELP bucketsqlite_skips_total Flushes that uploaded nothing because nothing changed.
# TYPE bucketsqlite_skips_total counter
bucketsqlite_skips_total{database=%[1]q} %[4]d
# HELP bucketsqlite_uploaded_bytes_total Total size of the uploaded snapshots, in bytes.
# TYPE bucketsqlite_uploaded_bytes_total counter
bucketsqlite_uploaded_bytes_total{database=%[1]q} %[6]d
# HELP bucketsqlite_uploads_total Flushes that uploaded a snapshot.
# TYPE bucketsqlite_uploads_total counter
bucketsqlite_uploads_total{database=%[1]q} %[3]d
`, db, flushes, uploads, skips, failures, bytes, lastFailed, conflicted, restored, restoredBytes)
}

func TestLint(t *testing.T) {
	db := open(t, "bucketprom-lint")
	flush(t, db)
	c := bucketprom.NewCollector(db, bucketprom.WithDatabase("app"))
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(c); n != 26 {
		t.Errorf("the collector exports %d series, want 26", n)
	}
}

// The counters follow the driver's Stats through an upload, an idle
// flush, and a conflict with another writer.
func TestCollectAndCompare(t *testing.T) {
	const name = "bucketprom-compare"
	db := open(t, name)
	c := bucketprom.NewCollector(db, bucketprom.WithDatabase("app"))

	if err := testutil.CollectAndCompare(c, strings.NewReader(expected("app", 0, 0, 0, 0, 0, 0, 0, 0, 0)), counters...); err != nil {
		t.Errorf("before any flush: %v", err)
	}
	up := flush(t, db)
	if !up.Uploaded || up.BytesWritten == 0 {
		t.Fatalf("first flush = %+v, want an upload", up)
	}
	flush(t, db) // nothing committed since: a skip
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected("app", 2, 1, 1, 0, up.BytesWritten, 0, 0, 0, 0)), counters...); err != nil {
		t.Errorf("after an upload and a skip: %v", err)
	}

	// Reopened, the database restores the snapshot it uploaded, and its
	// counters start again.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Its final flush will fail: a working copy under the test's directory
	// is removed with it, where a temporary one would be kept.
	db = openKey(t, name, "local="+filepath.Join(t.TempDir(), "app.db"))
	exec(t, db, "INSERT INTO t VALUES (2)")
	c = bucketprom.NewCollector(db, bucketprom.WithDatabase("app"))
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected("app", 0, 0, 0, 0, 0, 0, 0, 1, up.BytesWritten)), counters...); err != nil {
		t.Errorf("after a restore: %v", err)
	}

	// Another writer replaces the snapshot: the next flush must conflict,
	// and the metrics say so.
	other := []byte("another writer's snapshot")
	if _, err := bucket.Mem(name).Upload(context.Background(), "app.db", bytes.NewReader(other), int64(len(other)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := driver.Flush(context.Background(), db); !errors.Is(err, snapshot.ErrConflict) {
		t.Fatalf("a flush over another writer's snapshot = %v, want snapshot.ErrConflict", err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected("app", 1, 0, 0, 1, 0, 1, 1, 1, up.BytesWritten)), counters...); err != nil {
		t.Errorf("after a conflict: %v", err)
	}
}

// A series from a scrape's text: its name, its labels as written, its
// value.
type series struct {
	name, labels string
	value        float64
}

var seriesLine = regexp.MustCompile(`^(bucketsqlite_[a-z_]+)\{([^}]*)\} (\S+)$`)

// scrape GETs url and returns its bucketsqlite_ series, keyed by name and
// labels as in `bucketsqlite_uploads_total{database="a"}`.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %s: %s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the text format", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := seriesLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out[m[1]+"{"+m[2]+"}"] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Two databases on one registry, scraped through promhttp as Prometheus
// would: each has its own series, and a flush moves only its own.
func TestScrapeThroughPromhttp(t *testing.T) {
	a := open(t, "bucketprom-scrape-a")
	b := open(t, "bucketprom-scrape-b")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		bucketprom.NewCollector(a, bucketprom.WithDatabase("a")),
		bucketprom.NewCollector(b, bucketprom.WithDatabase("b")),
	)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	before := scrape(t, srv.URL)
	if len(before) != 52 {
		t.Errorf("the scrape holds %d bucketsqlite_ series, want 26 per database:\n%v", len(before), before)
	}
	for _, db := range []string{"a", "b"} {
		for _, name := range []string{"flushes_total", "uploads_total", "uploaded_bytes_total", "last_flush_timestamp_seconds", "last_upload_timestamp_seconds"} {
			key := fmt.Sprintf("bucketsqlite_%s{database=%q}", name, db)
			if v, ok := before[key]; !ok || v != 0 {
				t.Errorf("before any flush: %s = %v (present: %v), want 0", key, v, ok)
			}
		}
	}

	res := flush(t, a)
	st := stats(t, a)
	after := scrape(t, srv.URL)
	for key, want := range map[string]float64{
		`bucketsqlite_flushes_total{database="a"}`:                1,
		`bucketsqlite_uploads_total{database="a"}`:                1,
		`bucketsqlite_uploaded_bytes_total{database="a"}`:         float64(res.BytesWritten),
		`bucketsqlite_last_flush_timestamp_seconds{database="a"}`: float64(st.LastFlush.UnixNano()) / 1e9,
		`bucketsqlite_last_flush_failed{database="a"}`:            0,
		`bucketsqlite_flushes_total{database="b"}`:                0,
		`bucketsqlite_last_flush_timestamp_seconds{database="b"}`: 0,
	} {
		if got, ok := after[key]; !ok || got != want {
			t.Errorf("after a flush of a: %s = %v (present: %v), want %v", key, got, ok, want)
		}
	}
	if after[`bucketsqlite_last_upload_timestamp_seconds{database="a"}`] <= 0 {
		t.Errorf("after an upload, the last upload time is %v", after[`bucketsqlite_last_upload_timestamp_seconds{database="a"}`])
	}
}

// Two collectors with the same database name (here, none) describe the
// same series: the registry refuses the second instead of merging them.
func TestSameNameIsRefused(t *testing.T) {
	a := open(t, "bucketprom-dup-a")
	b := open(t, "bucketprom-dup-b")
	reg := prometheus.NewRegistry()
	reg.MustRegister(bucketprom.NewCollector(a))
	err := reg.Register(bucketprom.NewCollector(b))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("registering a second unnamed collector = %v, want AlreadyRegisteredError", err)
	}
	if err := reg.Register(bucketprom.NewCollector(b, bucketprom.WithDatabase("b"))); err != nil {
		t.Fatalf("registering a named collector: %v", err)
	}
}

// Constant labels are added to every series, beside database.
func TestConstLabels(t *testing.T) {
	db := open(t, "bucketprom-labels")
	c := bucketprom.NewCollector(db,
		bucketprom.WithConstLabels(prometheus.Labels{"tenant": "acme", "database": "ignored"}),
		bucketprom.WithDatabase("app"))
	want := `
# HELP bucketsqlite_uploads_total Flushes that uploaded a snapshot.
# TYPE bucketsqlite_uploads_total counter
bucketsqlite_uploads_total{database="app",tenant="acme"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "bucketsqlite_uploads_total"); err != nil {
		t.Error(err)
	}
}

// A database of another driver fails the scrape with an error, never
// zeros that would look healthy.
func TestNotBucketSQLite(t *testing.T) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(bucketprom.NewCollector(db, bucketprom.WithDatabase("plain")))
	_, err = reg.Gather()
	if !errors.Is(err, driver.ErrNotBucketSQLite) {
		t.Fatalf("Gather = %v, want an error matching driver.ErrNotBucketSQLite", err)
	}
}

// A closed database keeps reporting its final statistics: the final
// flush of Close is counted.
func TestClosedDatabaseReportsFinalStats(t *testing.T) {
	db := open(t, "bucketprom-closed")
	c := bucketprom.NewCollector(db, bucketprom.WithDatabase("app"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st := stats(t, db)
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected("app", 1, 1, 0, 0, st.BytesUploaded, 0, 0, 0, 0)), counters...); err != nil {
		t.Error(err)
	}
}

// With sync=log the log's figures are exported too.
func TestCollectLog(t *testing.T) {
	mem := "bucketprom-log"
	defer bucket.ForgetMem(mem)
	db, err := sql.Open("bucketsqlite", "mem://"+mem+"/app.db?flush_interval=0&sync=log")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	if _, err := driver.Flush(context.Background(), db); err != nil { // the base
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := driver.Flush(context.Background(), db); err != nil { // a delta
		t.Fatal(err)
	}
	c := bucketprom.NewCollector(db, bucketprom.WithDatabase("app"))
	want := `
# HELP bucketsqlite_deltas_total Deltas uploaded (sync=log): flushes that shipped only the changed pages.
# TYPE bucketsqlite_deltas_total counter
bucketsqlite_deltas_total{database="app"} 1
# HELP bucketsqlite_log_sequence Sequence of the last delta in the bucket (sync=log), or of the state a read replica holds.
# TYPE bucketsqlite_log_sequence gauge
bucketsqlite_log_sequence{database="app"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "bucketsqlite_deltas_total", "bucketsqlite_log_sequence"); err != nil {
		t.Fatal(err)
	}
}
