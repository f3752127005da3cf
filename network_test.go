package bucketsqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// netBound bounds each operation of the network tests against hangs; it
// is generous, not an assertion about speed.
const netBound = 60 * time.Second

// proxied is an S3 bucket on versitygw reached through a cutProxy, and
// the same bucket reached directly, to inspect what really got stored.
type proxied struct {
	srv            *s3test.Server
	proxy          *cutProxy
	name           string
	via, direct    bucket.Bucket
	viaS3, directS *s3.Client
}

func newProxied(t *testing.T) *proxied {
	t.Helper()
	srv := s3test.Start(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxied{srv: srv, proxy: startProxy(t, u.Host), name: srv.NewBucket(t, "")}
	p.viaS3 = s3.New(s3.Options{
		Region:                     srv.Region,
		BaseEndpoint:               aws.String(p.proxy.Endpoint()),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	if p.via, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: p.name, Client: p.viaS3}); err != nil {
		t.Fatal(err)
	}
	if p.direct, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: p.name, Client: srv.Client()}); err != nil {
		t.Fatal(err)
	}
	return p
}

// bigDB opens a database file of about 1 MiB, so that transfers span
// many reads and a cut lands in the middle of a body.
func bigDB(t *testing.T, rows int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, b BLOB)")
	addBlobs(t, db, rows)
	return db
}

func addBlobs(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	mustExec(t, db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO t(b) SELECT randomblob(1000) FROM n`, n)
}

// flushDB flushes db's database with snapshot.Flush through its raw
// connection.
func flushDB(t *testing.T, cctx context.Context, db *sql.DB, b bucket.Bucket, opts snapshot.FlushOptions) (snapshot.Result, error) {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var res snapshot.Result
	err = conn.Raw(func(dc any) error {
		var err error
		res, err = snapshot.Flush(cctx, sqliteConn(dc), b, "app.db", opts)
		return err
	})
	return res, err
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

func sqliteConn(dc any) *sqlite3.SQLiteConn { return dc.(*sqlite3.SQLiteConn) }

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

// TestNetworkCutMidUpload cuts the connection in the middle of the
// snapshot's PUT, once (the SDK retries: the request body is seekable and
// the write conditional, so a retry cannot clobber anything) and every
// time (the flush fails with an error that says what happened). Either
// way the bucket holds a whole snapshot, and once the network heals the
// next flush succeeds.
func TestNetworkCutMidUpload(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows int
		cfg  bucket.S3Config
	}{
		{"single-put", 1000, bucket.S3Config{}},
		// 5 MiB parts: a 7 MiB snapshot goes in two parts, and the cut
		// lands in one of them.
		{"multipart", 7000, bucket.S3Config{PartSize: 5 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxied(t)
			cfg := tc.cfg
			cfg.Bucket, cfg.Client = p.name, p.viaS3
			via, err := bucket.NewS3(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			cutMidUpload(t, p, via, tc.rows)
		})
	}
}

func cutMidUpload(t *testing.T, p *proxied, via bucket.Bucket, rows int) {
	db := bigDB(t, rows)
	base, err := flushDB(t, ctx, db, via, snapshot.FlushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := digest(t, db)

	for _, times := range []int{1, -1} {
		t.Run(fmt.Sprint("times=", times), func(t *testing.T) {
			addBlobs(t, db, 50)
			want := digest(t, db)
			p.proxy.Cut(up, 256<<10, times)
			cuts := p.proxy.Cuts()
			cctx, cancel := context.WithTimeout(ctx, netBound)
			res, err := flushDB(t, cctx, db, via, snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true})
			cancel()
			p.proxy.Heal()
			t.Logf("flush with %d cut(s): %v", p.proxy.Cuts()-cuts, err)
			if p.proxy.Cuts() == cuts {
				t.Fatal("the proxy cut nothing")
			}
			got, rerr := fileDigest(t, p.direct, "app.db")
			switch {
			case times == 1 && err != nil:
				t.Fatalf("one cut: the flush should have been retried: %v", err)
			case times == -1 && err == nil:
				t.Fatal("every attempt cut, yet the flush returned nil")
			case rerr != nil:
				t.Fatalf("the bucket's snapshot does not restore: %v", rerr)
			case err == nil && got != want:
				t.Fatal("the flush succeeded but the bucket holds another state")
			case err != nil && got != old:
				t.Fatal("a failed flush changed the bucket")
			}
			var unconfirmed []string
			if err != nil {
				unconfirmed = []string{res.SnapshotHash}
			} else {
				base = res
			}
			// The network heals: a flush with what the caller knows works.
			addBlobs(t, db, 1)
			res, err = flushDB(t, ctx, db, via, snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true, Unconfirmed: unconfirmed})
			if err != nil {
				t.Fatalf("flush after healing: %v", err)
			}
			base, old = res, digest(t, db)
			if got, err := fileDigest(t, p.direct, "app.db"); err != nil || got != old {
				t.Fatalf("after healing the bucket lacks writes: %v", err)
			}
		})
	}
	// No multipart upload is left behind, billed and invisible.
	out, err := p.srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(p.name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(out.Uploads))
	}
}

// TestNetworkCutMidDownload cuts the snapshot's GET in the middle of the
// body, once (the S3 backend asks for the missing bytes again, pinned to
// the same version with If-Match: the restore succeeds) and every time
// (it gives up after a few attempts with an error naming the connection
// failure). A failed restore never yields a partial file nor leaves a temp
// file, and works once the network heals.
func TestNetworkCutMidDownload(t *testing.T) {
	p := newProxied(t)
	db := bigDB(t, 1000)
	if _, err := flushDB(t, ctx, db, p.direct, snapshot.FlushOptions{}); err != nil {
		t.Fatal(err)
	}
	want := digest(t, db)
	for _, times := range []int{1, -1} {
		t.Run(fmt.Sprint("times=", times), func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "work.db")
			os.WriteFile(target, []byte("previous working copy"), 0o600)
			p.proxy.Cut(down, 300<<10, times)
			cuts := p.proxy.Cuts()
			cctx, cancel := context.WithTimeout(ctx, netBound)
			info, err := snapshot.RestoreFile(cctx, p.via, "app.db", target, snapshot.RestoreOptions{})
			cancel()
			p.proxy.Heal()
			t.Logf("restore with %d cut(s): %+v %v", p.proxy.Cuts()-cuts, info, err)
			if p.proxy.Cuts() == cuts {
				t.Fatal("the proxy cut nothing")
			}
			switch {
			case times == 1 && err != nil:
				t.Fatalf("one cut: the download should have resumed the broken range: %v", err)
			case times == -1 && err == nil:
				t.Fatal("every attempt cut, yet the restore returned nil")
			}
			if err == nil {
				// The resumed download must be the whole, right object.
				db, _ := sql.Open("sqlite3", target)
				defer db.Close()
				if digest(t, db) != want {
					t.Fatal("restore succeeded with different content")
				}
			} else {
				if errors.Is(err, snapshot.ErrCorrupt) {
					t.Errorf("a cut connection is reported as a corrupt snapshot: %v", err)
				}
				if data, _ := os.ReadFile(target); string(data) != "previous working copy" {
					t.Fatal("a failed restore replaced its target")
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Fatalf("a failed restore left %d temp files", len(ents)-1)
				}
			}
			if _, err := snapshot.RestoreFile(ctx, p.via, "app.db", target, snapshot.RestoreOptions{}); err != nil {
				t.Fatalf("restore after healing: %v", err)
			}
		})
	}
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
	p.proxy.Cut(up, 128<<10, -1)
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
	p.proxy.Cut(down, 200<<10, -1)
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

// TestNetworkLostResponse cuts the connection right after the server
// received the PUT, before its response: the write landed but the client
// cannot know. The SDK retries; the retry fails its condition on the
// object the first attempt wrote, and the flush recognises its own
// snapshot there instead of reporting a conflict.
func TestNetworkLostResponse(t *testing.T) {
	p := newProxied(t)
	db := bigDB(t, 200)
	for i, first := range []bool{true, false} {
		t.Run(fmt.Sprint("first=", first), func(t *testing.T) {
			var opts snapshot.FlushOptions
			if !first {
				st, err := p.direct.Stat(ctx, "app.db")
				if err != nil {
					t.Fatal(err)
				}
				opts.IfMatch = st.ETag
				addBlobs(t, db, 10)
			}
			want := digest(t, db)
			p.proxy.Cut(down, 0, 1) // the first response byte is the PUT's
			cuts := p.proxy.Cuts()
			cctx, cancel := context.WithTimeout(ctx, netBound)
			res, err := flushDB(t, cctx, db, p.via, opts)
			cancel()
			p.proxy.Heal()
			if p.proxy.Cuts() != cuts+1 {
				t.Fatalf("cuts: %d, want 1", p.proxy.Cuts()-cuts)
			}
			if err != nil {
				t.Fatalf("flush %d after a lost response: %v", i, err)
			}
			st, err := p.direct.Stat(ctx, "app.db")
			if err != nil || st.ETag != res.ETag {
				t.Fatalf("result ETag %s, object %+v %v", res.ETag, st, err)
			}
			if got, err := fileDigest(t, p.direct, "app.db"); err != nil || got != want {
				t.Fatalf("the bucket does not hold the flushed state: %v", err)
			}
		})
	}
}
