package snapshot_test

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// backend is one bucket implementation the snapshot tests run against.
type backend struct {
	name string
	new  func(t *testing.T) bucket.Bucket
}

// backends are the memory and directory buckets, and the S3 backend
// against a real versitygw server.
func backends() []backend {
	return []backend{
		{"mem", func(t *testing.T) bucket.Bucket { return bucket.NewMemory() }},
		{"dir", func(t *testing.T) bucket.Bucket {
			b, err := bucket.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"s3", newS3},
	}
}

func newS3(t *testing.T) bucket.Bucket { return newS3With(t, bucket.S3Config{}) }

// newS3With returns an S3 bucket on a new versitygw server, with cfg's
// transfer settings.
func newS3With(t *testing.T, cfg bucket.S3Config) bucket.Bucket {
	t.Helper()
	srv := s3test.Start(t)
	cfg.Bucket, cfg.Client = srv.NewBucket(t, ""), srv.Client()
	b, err := bucket.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b bucket.Bucket)) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) { f(t, be.new(t)) })
	}
}

// openDB opens a raw connection to a database file in mode ("WAL" or
// "DELETE").
func openDB(t testing.TB, path, mode string) *sqlite3.SQLiteConn {
	t.Helper()
	c, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(path, url.Values{"_journal_mode": {mode}}))
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*sqlite3.SQLiteConn)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// newDB returns a connection to a new database in a temp dir.
func newDB(t testing.TB, mode string) *sqlite3.SQLiteConn {
	t.Helper()
	return openDB(t, filepath.Join(t.TempDir(), "db.sqlite"), mode)
}

func run(t testing.TB, c *sqlite3.SQLiteConn, q string, args ...any) {
	t.Helper()
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	if _, err := c.ExecContext(context.Background(), q, nv); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// rows returns the single-column results of q as strings.
func rows(t testing.TB, c *sqlite3.SQLiteConn, q string) []string {
	t.Helper()
	r, err := c.QueryContext(context.Background(), q, nil)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	var out []string
	vals := make([]driver.Value, len(r.Columns()))
	for {
		if err := r.Next(vals); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		s := fmt.Sprint(vals[0])
		if b, ok := vals[0].([]byte); ok {
			s = string(b)
		}
		out = append(out, s)
	}
}

// fill creates table t and inserts n rows into it.
func fill(t testing.TB, c *sqlite3.SQLiteConn, n int) {
	t.Helper()
	run(t, c, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
	run(t, c, "BEGIN")
	for i := 0; i < n; i++ {
		run(t, c, "INSERT INTO t(v) VALUES (?)", fmt.Sprintf("row-%d", i))
	}
	run(t, c, "COMMIT")
}

func count(t testing.TB, c *sqlite3.SQLiteConn) string {
	t.Helper()
	return rows(t, c, "SELECT count(*) FROM t")[0]
}

// assertEmptyDir fails if dir holds any file: temp files must never be
// left behind.
func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

// upload stores data at key, with metadata.
func upload(t testing.TB, b bucket.Bucket, key string, data []byte, meta map[string]string) bucket.Attrs {
	t.Helper()
	a, err := b.Upload(context.Background(), key, bytesReaderAt(data), int64(len(data)), bucket.WriteOptions{Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// download returns the object at key.
func download(t testing.TB, b bucket.Bucket, key string) ([]byte, bucket.Attrs) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "dl-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := b.Download(context.Background(), key, f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return data, a
}

// hashOfKey is the MetaKeySHA256 value of key.
func hashOfKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
