package bucketsqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// counting is a bucket that counts the requests made through it.
type counting struct {
	bucket.Bucket
	mu sync.Mutex
	n  map[string]int
}

func newCounting(b bucket.Bucket) *counting { return &counting{Bucket: b, n: map[string]int{}} }

func (c *counting) inc(op string) {
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
}

// count returns the number of calls of ops (all calls when none given).
func (c *counting) count(ops ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for op, n := range c.n {
		if len(ops) == 0 {
			total += n
		}
		for _, o := range ops {
			if o == op {
				total += n
			}
		}
	}
	return total
}

func (c *counting) Stat(ctx context.Context, key string) (bucket.Attrs, error) {
	c.inc("stat")
	return c.Bucket.Stat(ctx, key)
}

func (c *counting) Download(ctx context.Context, key string, dst io.WriterAt) (bucket.Attrs, error) {
	c.inc("download")
	return c.Bucket.Download(ctx, key, dst)
}

func (c *counting) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts bucket.WriteOptions) (bucket.Attrs, error) {
	c.inc("upload")
	return c.Bucket.Upload(ctx, key, src, size, opts)
}

func (c *counting) Copy(ctx context.Context, src, dst string, opts bucket.CopyOptions) (bucket.Attrs, error) {
	c.inc("copy")
	return c.Bucket.Copy(ctx, src, dst, opts)
}

func (c *counting) Delete(ctx context.Context, key string) error {
	c.inc("delete")
	return c.Bucket.Delete(ctx, key)
}

func (c *counting) List(ctx context.Context, opts bucket.ListOptions) (bucket.ListPage, error) {
	c.inc("list")
	return c.Bucket.List(ctx, opts)
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
	db, err := bucket.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
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
