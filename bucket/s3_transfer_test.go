package bucket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// s3Hashed is a source that knows its SHA-256 (bucket.SHA256Source) and
// counts the bytes read from it.
type s3Hashed struct {
	r    *bytes.Reader
	hash string
	read atomic.Int64
}

func (s *s3Hashed) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.r.ReadAt(p, off)
	s.read.Add(int64(n))
	return n, err
}

func (s *s3Hashed) SHA256() string { return s.hash }

var _ bucket.SHA256Source = (*s3Hashed)(nil)

// An upload from a source that knows its SHA-256 reads it once, and the
// service checks the bytes against that hash: a wrong one fails the
// upload and keeps the previous object.
func TestS3UploadSHA256Source(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestS3(t, srv, bucket.S3Config{})
	ctx := context.Background()
	data := s3Random(1, 3<<20)
	sum := sha256.Sum256(data)
	good := &s3Hashed{r: bytes.NewReader(data), hash: hex.EncodeToString(sum[:])}
	if _, err := b.Upload(ctx, "k", good, int64(len(data)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := good.read.Load(); n != int64(len(data)) {
		t.Errorf("upload read %d bytes of a %d-byte source: want each byte read once", n, len(data))
	}
	if got, _ := s3Get(t, b, "k"); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ from the uploaded ones")
	}

	other := s3Random(2, len(data))
	bad := &s3Hashed{r: bytes.NewReader(other), hash: good.hash}
	_, err := b.Upload(ctx, "k", bad, int64(len(other)), bucket.WriteOptions{})
	if err == nil {
		t.Fatal("an upload whose bytes do not match its SHA-256 succeeded")
	}
	var be *bucket.Error
	if !errors.As(err, &be) || be.Op != "upload" || be.Key != "k" {
		t.Fatalf("err = %#v, want a *bucket.Error for upload %q", err, "k")
	}
	if got, _ := s3Get(t, b, "k"); !bytes.Equal(got, data) {
		t.Fatal("a failed upload changed the object")
	}
}
