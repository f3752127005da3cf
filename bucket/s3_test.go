package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/buckettest"
	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// testPartSize is S3's minimum part size: multipart paths run with the
// smallest objects.
const testPartSize = 5 << 20

func TestS3Conformance(t *testing.T) {
	srv := s3test.Start(t)
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket {
			return newTestS3(t, srv, bucket.S3Config{PartSize: testPartSize})
		},
		PartSize: testPartSize,
		// versitygw v1.8.0 reads only the copy-source conditions of a
		// CopyObject (s3api/controllers/object-put.go): If-Match and
		// If-None-Match on the destination are ignored.
		CopyIgnoresDestConditions: true,
	})
}

// newS3 returns an S3 backend on a new bucket of srv, with cfg's transfer
// settings and srv's client unless cfg has one.
func newTestS3(t *testing.T, srv *s3test.Server, cfg bucket.S3Config) *bucket.S3 {
	t.Helper()
	cfg.Bucket = srv.NewBucket(t, "")
	if cfg.Client == nil {
		cfg.Client = srv.Client()
	}
	b, err := bucket.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomBytes returns n bytes that differ for each seed.
func s3Random(seed uint64, n int) []byte {
	p := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// s3Sink is an io.WriterAt into memory.
type s3Sink struct {
	mu  sync.Mutex
	buf []byte
}

func (w *s3Sink) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(w.buf)) {
		w.buf = append(w.buf, make([]byte, end-int64(len(w.buf)))...)
	}
	copy(w.buf[off:], p)
	return len(p), nil
}

func (w *s3Sink) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf)
}

func s3Put(t *testing.T, b bucket.Bucket, key string, p []byte, opts bucket.WriteOptions) bucket.Attrs {
	t.Helper()
	a, err := b.Upload(context.Background(), key, bytes.NewReader(p), int64(len(p)), opts)
	if err != nil {
		t.Fatalf("Upload(%q, %d bytes): %v", key, len(p), err)
	}
	return a
}

func s3Get(t *testing.T, b bucket.Bucket, key string) ([]byte, bucket.Attrs) {
	t.Helper()
	var w s3Sink
	a, err := b.Download(context.Background(), key, &w)
	if err != nil {
		t.Fatalf("Download(%q): %v", key, err)
	}
	return w.bytes(), a
}

// wantErr checks that err is a *bucket.Error for op and key matching target.
func s3WantErr(t *testing.T, err error, op, key string, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s %q: err = %v, want one matching %v", op, key, err, target)
	}
	var be *bucket.Error
	if !errors.As(err, &be) || be.Op != op || be.Key != key {
		t.Fatalf("%s %q: err = %#v, want a *bucket.Error{Op: %q, Key: %q}", op, key, err, op, key)
	}
}

// s3Counter counts the S3 operations a client sends, by name.
type s3Counter struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *s3Counter) option(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
				middleware.InitializeOutput, middleware.Metadata, error,
			) {
				c.mu.Lock()
				if c.ops == nil {
					c.ops = map[string]int{}
				}
				c.ops[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func (c *s3Counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

// countingS3 returns an S3 backend whose requests c counts.
func countingS3(t *testing.T, srv *s3test.Server, c *s3Counter, cfg bucket.S3Config) *bucket.S3 {
	t.Helper()
	cfg.Client = s3.New(srv.Client().Options(), c.option)
	return newTestS3(t, srv, cfg)
}

func TestS3NotFound(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{})
	ctx := context.Background()

	_, err := b.Stat(ctx, "missing")
	s3WantErr(t, err, "stat", "missing", bucket.ErrNotFound)
	_, err = b.Download(ctx, "missing", &s3Sink{})
	s3WantErr(t, err, "download", "missing", bucket.ErrNotFound)
	_, err = b.Copy(ctx, "missing", "dst", bucket.CopyOptions{})
	s3WantErr(t, err, "copy", "missing", bucket.ErrNotFound)
	if err := b.Delete(ctx, "missing"); err != nil {
		t.Fatalf("Delete(missing) = %v, want nil", err)
	}

	// A missing bucket is not found either, for every operation.
	nb, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: "no-such-bucket", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = nb.Stat(ctx, "k")
	s3WantErr(t, err, "stat", "k", bucket.ErrNotFound)
	_, err = nb.Download(ctx, "k", &s3Sink{})
	s3WantErr(t, err, "download", "k", bucket.ErrNotFound)
	_, err = nb.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{})
	s3WantErr(t, err, "upload", "k", bucket.ErrNotFound)
	_, err = nb.List(ctx, bucket.ListOptions{Prefix: "p/"})
	s3WantErr(t, err, "list", "p/", bucket.ErrNotFound)
	err = nb.Delete(ctx, "k")
	s3WantErr(t, err, "delete", "k", bucket.ErrNotFound)
}

func TestS3Preconditions(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{})
	ctx := context.Background()
	old := s3Put(t, b, "k", []byte("old"), bucket.WriteOptions{})

	for _, tc := range []struct {
		name string
		key  string
		opts bucket.WriteOptions
	}{
		{"IfNoneMatch on an existing object", "k", bucket.WriteOptions{IfNoneMatch: true}},
		{"stale IfMatch", "k", bucket.WriteOptions{IfMatch: `"0123456789abcdef0123456789abcdef"`}},
		{"IfMatch on a missing object", "missing", bucket.WriteOptions{IfMatch: old.ETag}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Upload(ctx, tc.key, strings.NewReader("new"), 3, tc.opts)
			s3WantErr(t, err, "upload", tc.key, bucket.ErrPrecondition)
		})
	}
	if got, _ := s3Get(t, b, "k"); string(got) != "old" {
		t.Fatalf("after failed conditional uploads, k = %q, want %q", got, "old")
	}
	if _, err := b.Stat(ctx, "missing"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("a failed IfMatch upload created the object: Stat = %v", err)
	}

	a := s3Put(t, b, "k", []byte("new"), bucket.WriteOptions{IfMatch: old.ETag})
	if a.ETag == old.ETag {
		t.Fatalf("ETag did not change on overwrite: %s", a.ETag)
	}
	s3Put(t, b, "fresh", []byte("x"), bucket.WriteOptions{IfNoneMatch: true})

	_, err := b.Copy(ctx, "k", "k2", bucket.CopyOptions{IfSourceMatch: old.ETag})
	s3WantErr(t, err, "copy", "k", bucket.ErrPrecondition)
	if _, err := b.Stat(ctx, "k2"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("a failed conditional Copy wrote its destination: Stat = %v", err)
	}
}

// TestS3ConditionalMultipart: a multipart upload with a stale If-Match fails
// only on CompleteMultipartUpload, after every part was sent; the old object
// must survive and the parts must be gone.
func TestS3ConditionalMultipart(t *testing.T) {
	srv := s3test.Start(t)
	var c s3Counter
	b := countingS3(t, srv, &c, bucket.S3Config{PartSize: testPartSize})
	ctx := context.Background()

	old := s3Random(1, 1000)
	oldAttrs := s3Put(t, b, "db", old, bucket.WriteOptions{})
	large := s3Random(2, 3*testPartSize+7)
	c.take()

	for _, opts := range []bucket.WriteOptions{
		{IfMatch: `"0123456789abcdef0123456789abcdef"`},
		{IfNoneMatch: true},
	} {
		_, err := b.Upload(ctx, "db", bytes.NewReader(large), int64(len(large)), opts)
		s3WantErr(t, err, "upload", "db", bucket.ErrPrecondition)
		ops := c.take()
		if ops["UploadPart"] != 4 || ops["CompleteMultipartUpload"] != 1 {
			t.Fatalf("conditional upload of 4 parts sent %v, want a multipart upload of 4 parts", ops)
		}
		got, a := s3Get(t, b, "db")
		if !bytes.Equal(got, old) || a.ETag != oldAttrs.ETag {
			t.Fatalf("after a failed conditional multipart upload (%+v), the old object changed", opts)
		}
		s3NoUploads(t, srv, b.Bucket())
	}

	// With the right ETag it succeeds, and a parallel download returns it.
	a := s3Put(t, b, "db", large, bucket.WriteOptions{IfMatch: oldAttrs.ETag, Metadata: map[string]string{"v": "2"}})
	c.take()
	got, da := s3Get(t, b, "db")
	if !bytes.Equal(got, large) {
		t.Fatal("multipart round trip: content differs")
	}
	if da.ETag != a.ETag || da.Size != int64(len(large)) || da.Metadata["v"] != "2" {
		t.Fatalf("Download attrs %+v, Upload attrs %+v", da, a)
	}
	if ops := c.take(); ops["GetObject"] != 4 || len(ops) != 1 {
		t.Fatalf("download of a 4-part object sent %v, want 4 GetObject", ops)
	}
	st, err := b.Stat(ctx, "db")
	if err != nil || st.ETag != a.ETag || st.Size != a.Size {
		t.Fatalf("Stat = %+v, %v; Upload said %+v", st, err, a)
	}
}

// assertNoUploads fails t if bucket name has unfinished multipart uploads.
func s3NoUploads(t *testing.T, srv *s3test.Server, name string) {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(context.Background(),
		&s3.ListMultipartUploadsInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) > 0 {
		t.Fatalf("%d multipart uploads left behind (parts stay stored and billed)", len(out.Uploads))
	}
}

// s3CancelAfter is a ReaderAt that cancels a context once n bytes were read.
type s3CancelAfter struct {
	r      io.ReaderAt
	n      atomic.Int64
	cancel context.CancelFunc
}

func (c *s3CancelAfter) ReadAt(p []byte, off int64) (int, error) {
	if c.n.Add(-int64(len(p))) <= 0 {
		c.cancel()
	}
	return c.r.ReadAt(p, off)
}

func TestS3CancelMultipartAborts(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{PartSize: testPartSize, Concurrency: 2})
	old := []byte("old content")
	s3Put(t, b, "db", old, bucket.WriteOptions{})

	large := s3Random(3, 6*testPartSize)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &s3CancelAfter{r: bytes.NewReader(large), cancel: cancel}
	src.n.Store(2 * testPartSize)
	_, err := b.Upload(ctx, "db", src, int64(len(large)), bucket.WriteOptions{})
	s3WantErr(t, err, "upload", "db", context.Canceled)
	if got, _ := s3Get(t, b, "db"); !bytes.Equal(got, old) {
		t.Fatal("a cancelled upload changed the object")
	}
	s3NoUploads(t, srv, b.Bucket())
}

func TestS3CancelledContext(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{})
	s3Put(t, b, "k", []byte("x"), bucket.WriteOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Stat(ctx, "k")
	s3WantErr(t, err, "stat", "k", context.Canceled)
	_, err = b.Download(ctx, "k", &s3Sink{})
	s3WantErr(t, err, "download", "k", context.Canceled)
	_, err = b.Upload(ctx, "k", strings.NewReader("y"), 1, bucket.WriteOptions{})
	s3WantErr(t, err, "upload", "k", context.Canceled)
	_, err = b.List(ctx, bucket.ListOptions{})
	s3WantErr(t, err, "list", "", context.Canceled)
}

// s3OverwriteOnWrite is a WriterAt that overwrites the object being
// downloaded on its first write: every range requested after that must
// fail instead of mixing two versions.
type s3OverwriteOnWrite struct {
	s3Sink
	once      sync.Once
	overwrite func()
}

func (w *s3OverwriteOnWrite) WriteAt(p []byte, off int64) (int, error) {
	w.once.Do(w.overwrite)
	return w.s3Sink.WriteAt(p, off)
}

func TestS3DownloadPinnedToOneVersion(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{PartSize: testPartSize, Concurrency: 1})
	v1 := s3Random(4, 4*testPartSize)
	v2 := s3Random(5, 4*testPartSize)
	s3Put(t, b, "db", v1, bucket.WriteOptions{})

	w := &s3OverwriteOnWrite{overwrite: func() {
		// Possibly on a download goroutine: no t.Fatal here.
		_, err := b.Upload(context.Background(), "db", bytes.NewReader(v2), int64(len(v2)), bucket.WriteOptions{})
		if err != nil {
			t.Errorf("overwrite during download: %v", err)
		}
	}}
	_, err := b.Download(context.Background(), "db", w)
	s3WantErr(t, err, "download", "db", bucket.ErrPrecondition)
	if !strings.Contains(err.Error(), "changed during download") {
		t.Fatalf("error %q does not say the object changed", err)
	}
}

func TestS3RequestCounts(t *testing.T) {
	srv := s3test.Start(t)
	var c s3Counter
	b := countingS3(t, srv, &c, bucket.S3Config{PartSize: testPartSize})
	ctx := context.Background()

	for _, n := range []int{0, 1, testPartSize} {
		p := s3Random(uint64(n), n)
		s3Put(t, b, "k", p, bucket.WriteOptions{})
		if ops := c.take(); ops["PutObject"] != 1 || len(ops) != 1 {
			t.Errorf("Upload of %d bytes sent %v, want one PutObject", n, ops)
		}
		got, a := s3Get(t, b, "k")
		if !bytes.Equal(got, p) || a.Size != int64(n) {
			t.Errorf("Download of %d bytes returned %d bytes, size %d", n, len(got), a.Size)
		}
		want := 1
		if n == 0 {
			want = 2 // ranged GET refused (nothing to range over), then a plain GET
		}
		if ops := c.take(); ops["GetObject"] > want || len(ops) != 1 {
			t.Errorf("Download of %d bytes sent %v, want at most %d GetObject", n, ops, want)
		}
	}
	if _, err := b.Copy(ctx, "k", "k2", bucket.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if ops := c.take(); ops["HeadObject"] != 1 || ops["CopyObject"] != 1 || len(ops) != 2 {
		t.Errorf("Copy sent %v, want HeadObject and CopyObject", ops)
	}
	// Pinned by the caller (as a snapshot's KEY.prev copy is): one request.
	k2 := s3Put(t, b, "k", []byte("v2"), bucket.WriteOptions{})
	c.take()
	if _, err := b.Copy(ctx, "k", "k2", bucket.CopyOptions{IfSourceMatch: k2.ETag}); err != nil {
		t.Fatal(err)
	}
	if ops := c.take(); ops["CopyObject"] != 1 || len(ops) != 1 {
		t.Errorf("Copy with IfSourceMatch sent %v, want one CopyObject", ops)
	}
}

func TestS3CopyKeyEncoding(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{})
	ctx := context.Background()
	for i, key := range []string{
		"plain", "with space", "plus+sign", "per%cent", "q?mark", "hash#tag", "amp&ersand=eq",
		"ünïcödé/日本", "semi;colon,comma", "tilde~and'quote", "a/b/c",
	} {
		p := []byte(fmt.Sprintf("content %d", i))
		src := s3Put(t, b, key, p, bucket.WriteOptions{Metadata: map[string]string{"n": fmt.Sprint(i)}})
		dst := key + "-copy"
		a, err := b.Copy(ctx, key, dst, bucket.CopyOptions{IfSourceMatch: src.ETag})
		if err != nil {
			t.Fatalf("Copy(%q): %v", key, err)
		}
		got, da := s3Get(t, b, dst)
		if !bytes.Equal(got, p) || da.Metadata["n"] != fmt.Sprint(i) {
			t.Fatalf("copy of %q holds %q, metadata %v", key, got, da.Metadata)
		}
		if a.Key != dst || a.ETag != da.ETag {
			t.Fatalf("Copy(%q) returned %+v; object is %+v", key, a, da)
		}
	}
}

// TestS3ErrorsHideSecrets: whatever goes wrong, the secret key must not
// appear in an error.
func TestS3ErrorsHideSecrets(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	name := srv.NewBucket(t, "")

	// Through the default chain, with a wrong secret in the environment.
	isolateAWSEnv(t)
	const badSecret = "WRONG-secret-0123456789abcdefghijklmnop"
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", badSecret)
	b, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	_, err = b.Stat(ctx, "k")
	errs = append(errs, err)
	_, err = b.Upload(ctx, "k", strings.NewReader("x"), 1, bucket.WriteOptions{})
	errs = append(errs, err)
	_, err = b.Upload(ctx, "big", bytes.NewReader(make([]byte, 9<<20)), 9<<20, bucket.WriteOptions{})
	errs = append(errs, err)
	_, err = b.Download(ctx, "k", &s3Sink{})
	errs = append(errs, err)
	_, err = b.List(ctx, bucket.ListOptions{})
	errs = append(errs, err)
	// An endpoint with a password in it.
	_, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Endpoint: "http://user:" + badSecret + "@127.0.0.1:1"})
	errs = append(errs, err)
	_, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Endpoint: "ftp://user:" + badSecret + "@h"})
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Fatalf("error %d: nil, want a failure", i)
		}
		for _, secret := range []string{badSecret, srv.SecretKey} {
			if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
				t.Fatalf("error %d contains a secret: %v", i, err)
			}
		}
	}

	// The right secret through the same chain works.
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	b, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	s3Put(t, b, "k", []byte("x"), bucket.WriteOptions{})
}

// isolateAWSEnv keeps the developer's AWS configuration out of a test.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION",
	} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestNewS3Config checks how NewS3 turns its config into a client; it
// needs no S3 server.
func TestNewS3Config(t *testing.T) {
	isolateAWSEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte("[profile other]\nregion = eu-west-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)

	for _, tc := range []struct {
		name         string
		env          map[string]string
		cfg          bucket.S3Config
		wantRegion   string
		wantEndpoint string
		wantPath     bool
	}{
		{
			name:       "AWS with a region",
			cfg:        bucket.S3Config{Bucket: "b", Region: "eu-central-1"},
			wantRegion: "eu-central-1",
		},
		{
			name:       "AWS, region from the environment",
			env:        map[string]string{"AWS_REGION": "ap-south-1"},
			cfg:        bucket.S3Config{Bucket: "b"},
			wantRegion: "ap-south-1",
		},
		{
			name:       "AWS, region from a profile",
			cfg:        bucket.S3Config{Bucket: "b", Profile: "other"},
			wantRegion: "eu-west-3",
		},
		{
			name:         "R2",
			cfg:          bucket.S3Config{Bucket: "b", Endpoint: "https://acct.r2.cloudflarestorage.com", Region: "auto"},
			wantRegion:   "auto",
			wantEndpoint: "https://acct.r2.cloudflarestorage.com",
		},
		{
			name:         "MinIO-like, default region",
			cfg:          bucket.S3Config{Bucket: "b", Endpoint: "http://127.0.0.1:9000", PathStyle: true},
			wantRegion:   "us-east-1",
			wantEndpoint: "http://127.0.0.1:9000",
			wantPath:     true,
		},
		{
			name:       "AWSConfig",
			cfg:        bucket.S3Config{Bucket: "b", AWSConfig: &aws.Config{Region: "sa-east-1"}},
			wantRegion: "sa-east-1",
		},
		{
			name:         "endpoint from AWS_ENDPOINT_URL_S3",
			cfg:          bucket.S3Config{Bucket: "b"},
			env:          map[string]string{"AWS_ENDPOINT_URL_S3": "https://acct.r2.cloudflarestorage.com", "AWS_REGION": "auto"},
			wantRegion:   "auto",
			wantEndpoint: "https://acct.r2.cloudflarestorage.com",
		},
		{
			name:         "endpoint from AWS_ENDPOINT_URL, no region",
			cfg:          bucket.S3Config{Bucket: "b"},
			env:          map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": ""},
			wantRegion:   "us-east-1",
			wantEndpoint: "http://127.0.0.1:9",
		},
		{
			name: "ClientOptions apply last",
			cfg: bucket.S3Config{Bucket: "b", Region: "us-west-2", ClientOptions: []func(*s3.Options){
				func(o *s3.Options) { o.UsePathStyle = true },
			}},
			wantRegion: "us-west-2",
			wantPath:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			b, err := bucket.NewS3(ctx, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			o := b.Client().Options()
			if o.Region != tc.wantRegion || aws.ToString(o.BaseEndpoint) != tc.wantEndpoint ||
				o.UsePathStyle != tc.wantPath {
				t.Fatalf("client options: region %q, endpoint %q, path style %v; want %q, %q, %v",
					o.Region, aws.ToString(o.BaseEndpoint), o.UsePathStyle, tc.wantRegion, tc.wantEndpoint, tc.wantPath)
			}
			// Checksums only when required with custom endpoints; the SDK's
			// defaults with AWS.
			custom := tc.wantEndpoint != ""
			if (o.RequestChecksumCalculation == aws.RequestChecksumCalculationWhenRequired) != custom ||
				(o.ResponseChecksumValidation == aws.ResponseChecksumValidationWhenRequired) != custom {
				t.Fatalf("custom endpoint %v, but checksum calculation %v, validation %v",
					custom, o.RequestChecksumCalculation, o.ResponseChecksumValidation)
			}
			if b.Bucket() != tc.cfg.Bucket {
				t.Fatalf("Bucket() = %q", b.Bucket())
			}
		})
	}

	client := s3.New(s3.Options{Region: "x"})
	for _, tc := range []struct {
		name string
		cfg  bucket.S3Config
	}{
		{"no bucket", bucket.S3Config{Region: "r"}},
		{"no region for AWS", bucket.S3Config{Bucket: "b"}},
		{"part size too small", bucket.S3Config{Bucket: "b", Region: "r", PartSize: 1 << 20}},
		{"part size too large", bucket.S3Config{Bucket: "b", Region: "r", PartSize: 6 << 30}},
		{"negative concurrency", bucket.S3Config{Bucket: "b", Region: "r", Concurrency: -1}},
		{"negative threshold", bucket.S3Config{Bucket: "b", Region: "r", MultipartThreshold: -1}},
		{"endpoint without scheme", bucket.S3Config{Bucket: "b", Endpoint: "127.0.0.1:9000"}},
		{"endpoint not http", bucket.S3Config{Bucket: "b", Endpoint: "ftp://h"}},
		{"Client and Endpoint", bucket.S3Config{Bucket: "b", Client: client, Endpoint: "http://h"}},
		{"Client and Region", bucket.S3Config{Bucket: "b", Client: client, Region: "r"}},
		{"AWSConfig and Profile", bucket.S3Config{Bucket: "b", AWSConfig: &aws.Config{Region: "r"}, Profile: "p"}},
		{"missing profile", bucket.S3Config{Bucket: "b", Profile: "no-such-profile"}},
	} {
		t.Run("invalid/"+tc.name, func(t *testing.T) {
			if b, err := bucket.NewS3(ctx, tc.cfg); err == nil {
				t.Fatalf("NewS3 = %+v, want an error", b)
			}
		})
	}
}

// TestNewS3Requests checks what NewS3's client sends for an R2-style and a
// path-style configuration, against a recording HTTP server.
func TestNewS3Requests(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
	var (
		mu   sync.Mutex
		reqs []*http.Request
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		reqs = append(reqs, r.Clone(context.Background()))
		mu.Unlock()
		w.Header().Set("ETag", `"abc"`)
	}))
	defer ts.Close()

	for _, tc := range []struct {
		name     string
		cfg      bucket.S3Config
		wantPath string
		wantHost string
		region   string
	}{
		{"path style", bucket.S3Config{Bucket: "bkt", Endpoint: ts.URL, PathStyle: true},
			"/bkt/dir/a%20b", ts.Listener.Addr().String(), "us-east-1"},
		{"region auto", bucket.S3Config{Bucket: "bkt", Endpoint: ts.URL, PathStyle: true, Region: "auto"},
			"/bkt/dir/a%20b", ts.Listener.Addr().String(), "auto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			reqs = nil
			mu.Unlock()
			b, err := bucket.NewS3(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			a, err := b.Upload(context.Background(), "dir/a b", strings.NewReader("hello"), 5, bucket.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if a.ETag != `"abc"` {
				t.Fatalf("ETag %q, want the server's, quoted", a.ETag)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPut || r.URL.EscapedPath() != tc.wantPath || r.Host != tc.wantHost {
				t.Fatalf("request %s %s (host %s), want PUT %s on %s",
					r.Method, r.URL.EscapedPath(), r.Host, tc.wantPath, tc.wantHost)
			}
			if auth := r.Header.Get("Authorization"); !strings.Contains(auth, "/"+tc.region+"/s3/aws4_request") {
				t.Fatalf("Authorization %q is not signed for region %q", auth, tc.region)
			}
			for name := range r.Header {
				if l := strings.ToLower(name); strings.HasPrefix(l, "x-amz-checksum-") ||
					l == "x-amz-sdk-checksum-algorithm" || l == "x-amz-trailer" {
					t.Fatalf("custom endpoint got checksum header %s (many S3-compatible services reject it)", name)
				}
			}
		})
	}
}

var errInjected = errors.New("connection reset (injected)")

// s3BreakingClient breaks off the bodies of the first n ranged GET
// responses after `after` bytes, as a dropped connection would.
type s3BreakingClient struct {
	inner s3.HTTPClient
	n     atomic.Int32
	after int64
}

func (c *s3BreakingClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(r)
	if err == nil && r.Method == http.MethodGet && resp.StatusCode == http.StatusPartialContent &&
		c.n.Add(-1) >= 0 {
		resp.Body = &s3BreakingBody{ReadCloser: resp.Body, left: c.after}
	}
	return resp, err
}

type s3BreakingBody struct {
	io.ReadCloser
	left int64
}

func (b *s3BreakingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errInjected
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

func TestS3DownloadResumesBrokenRanges(t *testing.T) {
	srv := s3test.Start(t)
	var c s3Counter
	breaker := &s3BreakingClient{after: 1 << 20}
	client := s3.New(srv.Client().Options(), c.option, func(o *s3.Options) {
		breaker.inner = o.HTTPClient
		o.HTTPClient = breaker
	})
	b := newTestS3(t, srv, bucket.S3Config{PartSize: testPartSize, Client: client})
	// Four whole ranges, each longer than the 1 MiB a broken response
	// delivers, so that whichever two responses break, each does.
	p := s3Random(6, 4*testPartSize)
	s3Put(t, b, "db", p, bucket.WriteOptions{})

	// Two responses break off: each costs one more GET, for what is missing.
	c.take()
	breaker.n.Store(2)
	got, _ := s3Get(t, b, "db")
	if !bytes.Equal(got, p) {
		t.Fatal("download with broken responses returned different bytes")
	}
	if ops := c.take(); ops["GetObject"] != 4+2 {
		t.Fatalf("download of 4 ranges, 2 broken, sent %v; want 6 GetObject", ops)
	}

	// Every response breaks off: the download gives up, with the cause.
	breaker.n.Store(1000)
	_, err := b.Download(context.Background(), "db", &s3Sink{})
	s3WantErr(t, err, "download", "db", errInjected)
}

// s3FailingSink fails every write.
type s3FailingSink struct{ calls atomic.Int32 }

var errSinkFull = errors.New("disk full (injected)")

func (s *s3FailingSink) WriteAt(p []byte, off int64) (int, error) {
	s.calls.Add(1)
	return 0, errSinkFull
}

func TestS3DownloadDestinationError(t *testing.T) {
	srv := s3test.Start(t)
	var c s3Counter
	b := countingS3(t, srv, &c, bucket.S3Config{PartSize: testPartSize, Concurrency: 1})
	s3Put(t, b, "small", []byte("abc"), bucket.WriteOptions{})
	c.take()
	var sink s3FailingSink
	_, err := b.Download(context.Background(), "small", &sink)
	s3WantErr(t, err, "download", "small", errSinkFull)
	// A destination error is not the network's: no second request.
	if ops := c.take(); ops["GetObject"] != 1 || sink.calls.Load() != 1 {
		t.Fatalf("download into a failing destination sent %v and wrote %d times; want 1 GetObject, 1 write",
			ops, sink.calls.Load())
	}
}
