//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/childproc"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

var ctx = context.Background()

// TestMain lets the test binary double as the child processes of the
// tests that need a process to exit without closing its database, to be
// killed, or to write beside the test's own process.
func TestMain(m *testing.M) {
	childproc.Main(m, map[string]func([]string) int{
		"script":   scriptMain,
		"writer":   writerMain,
		"crash":    crashMain,
		"logcrash": logCrashMain,
		// replica_proc_test.go
		"replica":   replicaMain,
		"logwriter": logWriterMain,
	})
}

// target is a place snapshots live, reachable both by DSN and as a
// bucket.Bucket for inspection.
type target struct {
	name string
	// dsn returns the DSN of key (with extra parameters appended).
	dsn func(key, params string) string
	b   bucket.Bucket
}

// targets returns a directory bucket and an S3 bucket on versitygw,
// addressed by DSN as users would: the S3 credentials come from the
// standard AWS environment variables.
func targets(t *testing.T) []target {
	dir := t.TempDir()
	db := mustDir(t, dir)
	srv := s3test.Start(t)
	name := srv.NewBucket(t, "")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	sb, err := bucket.NewS3(context.Background(), bucket.S3Config{Bucket: name, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	join := func(base, params string) string {
		if params == "" {
			return base
		}
		if strings.Contains(base, "?") {
			return base + "&" + params
		}
		return base + "?" + params
	}
	return []target{
		{"dir", func(key, params string) string { return join("file://"+dir+"/"+key, params) }, db},
		{"s3", func(key, params string) string {
			return join(fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&path_style=true", name, key, srv.Endpoint, srv.Region), params)
		}, sb},
	}
}

func forEachTarget(t *testing.T, f func(t *testing.T, tg target)) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) { f(t, tg) })
	}
}

func mustDir(t *testing.T, root string) *bucket.Dir {
	t.Helper()
	b, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustOpen(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		t.Fatalf("sql.Open(%q): %v", dsn, err)
	}
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func countRows(t testing.TB, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// restoreScratch restores key from b into a scratch file and opens it with
// plain go-sqlite3 (closed by t.Cleanup). A missing snapshot is
// bucket.ErrNotFound; a failed restore is its error.
func restoreScratch(t testing.TB, b bucket.Bucket, key string) (*sql.DB, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.db")
	info, err := snapshot.RestoreFile(context.Background(), b, key, path, snapshot.RestoreOptions{})
	if err != nil {
		return nil, err
	}
	if !info.Found {
		return nil, bucket.ErrNotFound
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, nil
}

// restoreCount restores key from b into a scratch database and counts the
// rows of table.
func restoreCount(t *testing.T, b bucket.Bucket, key, table string) int {
	t.Helper()
	db, err := restoreScratch(t, b, key)
	if err != nil {
		t.Fatalf("restore %s: %v", key, err)
	}
	return countRows(t, db, table)
}

// waitFor polls cond until it holds, failing after a generous bound. It
// asserts that something happens, not how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// long reports whether the long variants of the reliability tests run
// (BUCKETSQLITE_LONG=1): hundreds of kills, a soak of minutes.
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv("BUCKETSQLITE_LONG"))
	return v
}

// seed returns the seed of a randomized test, from BUCKETSQLITE_SEED when
// set (to replay a failure), and logs it.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("BUCKETSQLITE_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BUCKETSQLITE_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("seed %d (replay with BUCKETSQLITE_SEED=%d)", s, s)
	return s
}
