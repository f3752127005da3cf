package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestServerRoundTrip(t *testing.T) {
	srv := Start(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" {
		t.Fatalf("Endpoint = %q, want http://127.0.0.1:PORT", srv.Endpoint)
	}
	if srv.AccessKey == "" || srv.SecretKey == "" || srv.Region != Region {
		t.Fatalf("server = %+v", srv)
	}

	name := srv.NewBucket(t, "")
	if fi, err := os.Stat(filepath.Join(srv.Dir, name)); err != nil || !fi.IsDir() {
		t.Fatalf("bucket %q is not a directory under %s: %v", name, srv.Dir, err)
	}
	ctx := context.Background()
	client := srv.Client()
	want := []byte("hello, bucket")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(name), Key: aws.String("a/b"), Body: bytes.NewReader(want),
	}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(name), Key: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetObject = %q, %v; want %q", got, err, want)
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint || a.SecretKey == b.SecretKey || a.AccessKey == b.AccessKey {
		t.Fatalf("two servers share an endpoint or keys: %s %s", a.Endpoint, b.Endpoint)
	}
	// a's credentials must not work on b.
	wrong := a.Client()
	opts := b.Client().Options()
	_, err := wrong.ListBuckets(context.Background(), &s3.ListBucketsInput{}, func(o *s3.Options) {
		o.BaseEndpoint = opts.BaseEndpoint
	})
	if err == nil {
		t.Fatal("server b accepted server a's credentials")
	}
}

func TestNewBucketNames(t *testing.T) {
	srv := Start(t)
	seen := map[string]bool{}
	for range 3 {
		n := srv.NewBucket(t, "")
		if seen[n] {
			t.Fatalf("NewBucket returned %q twice", n)
		}
		seen[n] = true
	}
	if got := srv.NewBucket(t, "explicit-name"); got != "explicit-name" {
		t.Fatalf("NewBucket(explicit-name) = %q", got)
	}
}

func TestBucketName(t *testing.T) {
	s := &Server{}
	for _, name := range []string{
		"TestX", "TestX/sub_test#01", "", "///", strings.Repeat("Long", 40),
	} {
		got := s.bucketName(name)
		if len(got) < 3 || len(got) > 63 || strings.Trim(got, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
			strings.HasPrefix(got, "-") || strings.HasSuffix(got, "-") {
			t.Errorf("bucketName(%q) = %q: not a valid bucket name", name, got)
		}
	}
}

func TestStartServerClose(t *testing.T) {
	if _, err := Binary(context.Background()); err != nil {
		t.Skipf("no versitygw: %v", err)
	}
	srv, err := StartServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := srv.Dir
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left %s behind: %v", dir, err)
	}
	if _, err := srv.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{}, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
	}); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestBinaryFromEnv(t *testing.T) {
	t.Setenv("VERSITYGW", filepath.Join(t.TempDir(), "missing"))
	if _, err := Binary(context.Background()); err == nil || !strings.Contains(err.Error(), "VERSITYGW=") {
		t.Fatalf("Binary with a missing VERSITYGW = %v, want an error naming VERSITYGW", err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 4}
	io.WriteString(tb, "abc")
	io.WriteString(tb, "defg")
	if got := tb.String(); got != "defg" {
		t.Fatalf("tail = %q, want %q", got, "defg")
	}
}

// recordTB records how unavailable stopped a test, without stopping it.
type recordTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func TestUnavailableSkipsOrFails(t *testing.T) {
	cause := errors.New("no binary here")
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{
		{"", false}, {"false", false}, {"true", true}, {"1", true},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recordTB{TB: t}
			unavailable(r, cause)
			if r.failed != tc.wantFail || r.skipped == tc.wantFail {
				t.Fatalf("failed=%v skipped=%v, want failed=%v", r.failed, r.skipped, tc.wantFail)
			}
			if !strings.Contains(r.msg, cause.Error()) {
				t.Fatalf("message %q does not give the reason %q", r.msg, cause)
			}
		})
	}
}
