//go:build cgo

package snapshot_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/netproxy"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// netBound bounds each operation of the network tests against hangs; it
// is generous, not an assertion about speed.
const netBound = 60 * time.Second

// proxied is an S3 bucket on versitygw reached through a
// netproxy.Proxy, and the same bucket reached directly, to inspect what
// really got stored.
type proxied struct {
	srv         *s3test.Server
	proxy       *netproxy.Proxy
	name        string
	via, direct bucket.Bucket
	viaS3       *s3.Client
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
	p := &proxied{srv: srv, proxy: proxy, name: srv.NewBucket(t, ""), viaS3: srv.ClientAt(proxy.Endpoint())}
	if p.via, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: p.name, Client: p.viaS3}); err != nil {
		t.Fatal(err)
	}
	if p.direct, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: p.name, Client: srv.Client()}); err != nil {
		t.Fatal(err)
	}
	return p
}

// bigDB returns a connection to a database of about rows KiB, so that
// transfers span many reads and a cut lands in the middle of a body.
func bigDB(t *testing.T, rows int) *sqlite3.SQLiteConn {
	t.Helper()
	c := newDB(t, "DELETE")
	run(t, c, "CREATE TABLE t(x INTEGER PRIMARY KEY, b BLOB)")
	addBlobs(t, c, rows)
	return c
}

func addBlobs(t *testing.T, c *sqlite3.SQLiteConn, n int) {
	t.Helper()
	run(t, c, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO t(b) SELECT randomblob(1000) FROM n`, int64(n))
}

// flushDB flushes c's database to app.db in b.
func flushDB(cctx context.Context, c *sqlite3.SQLiteConn, b bucket.Bucket, opts snapshot.FlushOptions) (snapshot.Result, error) {
	return snapshot.Flush(cctx, c, b, "app.db", opts)
}

// digest is a database's content, for comparing states.
func digest(t testing.TB, c *sqlite3.SQLiteConn) string {
	t.Helper()
	rs := rows(t, c, "SELECT x || ':' || hex(b) FROM t ORDER BY x")
	return fmt.Sprintf("%d rows %x", len(rs), sha256.Sum256([]byte(strings.Join(rs, ";"))))
}

// fileDigest restores key from b into a scratch database and returns its
// digest, or the restore's error.
func fileDigest(t *testing.T, b bucket.Bucket, key string) (string, error) {
	t.Helper()
	dst := newDB(t, "DELETE")
	ok, err := snapshot.Restore(ctx, dst, b, key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", bucket.ErrNotFound
	}
	return digest(t, dst), nil
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
	base, err := flushDB(ctx, db, via, snapshot.FlushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := digest(t, db)

	for _, times := range []int{1, -1} {
		t.Run(fmt.Sprint("times=", times), func(t *testing.T) {
			addBlobs(t, db, 50)
			want := digest(t, db)
			p.proxy.Cut(netproxy.Up, 256<<10, times)
			cuts := p.proxy.Cuts()
			cctx, cancel := context.WithTimeout(ctx, netBound)
			res, err := flushDB(cctx, db, via, snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true})
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
			res, err = flushDB(ctx, db, via, snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: true, Unconfirmed: unconfirmed})
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
	if _, err := flushDB(ctx, db, p.direct, snapshot.FlushOptions{}); err != nil {
		t.Fatal(err)
	}
	want := digest(t, db)
	for _, times := range []int{1, -1} {
		t.Run(fmt.Sprint("times=", times), func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "work.db")
			if err := os.WriteFile(target, []byte("previous working copy"), 0o600); err != nil {
				t.Fatal(err)
			}
			p.proxy.Cut(netproxy.Down, 300<<10, times)
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
				if digest(t, openDB(t, target, "DELETE")) != want {
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
			p.proxy.Cut(netproxy.Down, 0, 1) // the first response byte is the PUT's
			cuts := p.proxy.Cuts()
			cctx, cancel := context.WithTimeout(ctx, netBound)
			res, err := flushDB(cctx, db, p.via, opts)
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
