package bucket_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// s3BenchSizeEnv overrides the size of BenchmarkS3's object, in bytes or
// with a KiB, MiB or GiB suffix: BUCKETSQLITE_S3_BENCH_SIZE=16MiB.
const s3BenchSizeEnv = "BUCKETSQLITE_S3_BENCH_SIZE"

// BenchmarkS3 measures the S3 backend's transfers of one large object
// against a versitygw server on loopback, next to a plain single PutObject
// and GetObject of the same bytes through the same client, so that the
// backend's multipart upload and parallel download are judged against
// the simplest thing that works:
//
//	go test -bench S3 -run '^$' ./bucket/
func BenchmarkS3(b *testing.B) {
	size := int64(256 << 20)
	if v := os.Getenv(s3BenchSizeEnv); v != "" {
		n, err := parseSize(v)
		if err != nil {
			b.Fatalf("%s: %v", s3BenchSizeEnv, err)
		}
		size = n
	}
	srv := s3test.Start(b)
	ctx := context.Background()
	client := srv.Client()
	name := srv.NewBucket(b, "")
	bk, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Client: client})
	if err != nil {
		b.Fatal(err)
	}

	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	dst := make([]byte, size) // downloads land here, as they would in a file

	b.Run("upload/backend", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := bk.Upload(ctx, "backend", bytes.NewReader(data), size, bucket.WriteOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("upload/plain-put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{
				Bucket:        aws.String(name),
				Key:           aws.String("plain"),
				Body:          bytes.NewReader(data),
				ContentLength: aws.Int64(size),
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Both downloads read one object, stored untimed, so that the
	// download benchmarks also run alone (-bench S3/download).
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(name),
		Key:           aws.String("download"),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(size),
	}); err != nil {
		b.Fatal(err)
	}

	b.Run("download/backend", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			clear(dst)
			if _, err := bk.Download(ctx, "download", sliceWriterAt(dst)); err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.Equal(dst, data) {
			b.Fatal("downloaded bytes differ from the uploaded ones")
		}
	})
	b.Run("download/plain-get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			clear(dst)
			out, err := client.GetObject(ctx, &s3.GetObjectInput{
				Bucket: aws.String(name),
				Key:    aws.String("download"),
			})
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.ReadFull(out.Body, dst)
			out.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.Equal(dst, data) {
			b.Fatal("downloaded bytes differ from the uploaded ones")
		}
	})
}

// sliceWriterAt writes into a fixed slice.
type sliceWriterAt []byte

func (s sliceWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(s)) {
		return 0, fmt.Errorf("write of %d bytes at %d outside %d", len(p), off, len(s))
	}
	return copy(s[off:], p), nil
}

// parseSize parses "1048576", "512KiB", "16MiB" or "1GiB".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size (bytes, or with KiB, MiB, GiB)", s)
	}
	return n * mult, nil
}
