//go:build cgo

package driver_test

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/netproxy"
	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// netBound bounds each operation of the network tests against hangs; it
// is generous, not an assertion about speed.
const netBound = 60 * time.Second

// proxied is an S3 bucket on versitygw whose DSN goes through a
// netproxy.Proxy, and the same bucket reached directly, to inspect what
// really got stored.
type proxied struct {
	srv    *s3test.Server
	proxy  *netproxy.Proxy
	name   string
	direct bucket.Bucket
}

func newProxied(t *testing.T) *proxied {
	t.Helper()
	srv := s3test.Start(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := netproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := &proxied{srv: srv, proxy: proxy, name: srv.NewBucket(t, "")}
	if p.direct, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: p.name, Client: srv.Client()}); err != nil {
		t.Fatal(err)
	}
	return p
}

func addBlobs(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	mustExec(t, db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO t(b) SELECT randomblob(1000) FROM n`, n)
}

// digest is a database's content, for comparing states.
func digest(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT x, b FROM t ORDER BY x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	n := 0
	for rows.Next() {
		var x int64
		var b []byte
		if err := rows.Scan(&x, &b); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d:%x;", x, b)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows %x", n, h.Sum(nil))
}

// isNetErr reports whether err comes from a broken connection.
func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset")
}

// fileDigest restores key from b into a scratch file and returns its
// digest, or the restore's error.
func fileDigest(t *testing.T, b bucket.Bucket, key string) (string, error) {
	t.Helper()
	db, err := restoreScratch(t, b, key)
	if err != nil {
		return "", err
	}
	return digest(t, db), nil
}

// TestNetworkCutThroughDriver runs the driver over a DSN whose endpoint
// is the proxy: a flush with every upload cut fails and keeps everything
// local; after healing, the next flush and Close succeed; a restore whose
// download is cut fails the first query and works on the next.
func TestNetworkCutThroughDriver(t *testing.T) {
	p := newProxied(t)
	t.Setenv("AWS_ACCESS_KEY_ID", p.srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", p.srv.SecretKey)
	dsn := fmt.Sprintf("s3://%s/app.db?endpoint=%s&region=%s&path_style=true&flush_interval=0&flush_timeout=%s",
		p.name, p.proxy.Endpoint(), p.srv.Region, netBound)
	db := mustOpen(t, dsn)
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, b BLOB)")
	addBlobs(t, db, 1000)
	if _, err := driver.Flush(ctx, db); err != nil {
		t.Fatal(err)
	}
	old := digest(t, db)
	addBlobs(t, db, 100)
	want := digest(t, db)
	p.proxy.Cut(netproxy.Up, 128<<10, -1)
	_, err := driver.Flush(ctx, db)
	p.proxy.Heal()
	t.Logf("flush through cut uploads: %v", err)
	if err == nil {
		t.Fatal("every upload cut, yet the flush returned nil")
	}
	if got, err := fileDigest(t, p.direct, "app.db"); err != nil || got != old {
		t.Fatalf("a failed flush changed the bucket: %v", err)
	}
	if digest(t, db) != want {
		t.Fatal("the database lost writes")
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close after healing: %v", err)
	}
	if got, err := fileDigest(t, p.direct, "app.db"); err != nil || got != want {
		t.Fatalf("the bucket lacks writes after Close: %v", err)
	}

	db = mustOpen(t, dsn)
	defer db.Close()
	p.proxy.Cut(netproxy.Down, 200<<10, -1)
	err = db.Ping()
	p.proxy.Heal()
	t.Logf("restore through cut downloads: %v", err)
	if err == nil || !isNetErr(err) {
		t.Fatalf("Ping with every download cut = %v; want a network error", err)
	}
	if got := digest(t, db); got != want {
		t.Fatal("the restore after healing differs")
	}
}
