package snapshot_test

import (
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// benchSize is the database size for benchmarks: BUCKETSQLITE_BENCH_MB
// MiB, 256 by default.
func benchSize(b *testing.B) int64 {
	mb := int64(256)
	if s := os.Getenv("BUCKETSQLITE_BENCH_MB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("BUCKETSQLITE_BENCH_MB=%q: want a positive integer", s)
		}
		mb = n
	}
	return mb << 20
}

// BenchmarkSnapshot measures a full flush and a restore of a database
// against versitygw on loopback, each next to its baseline in the same
// run: a plain PutObject of the same bytes, and a plain GetObject plus
// PRAGMA integrity_check.
//
//	go test -run '^$' -bench Snapshot -benchtime 3x ./snapshot/
//	BUCKETSQLITE_BENCH_MB=64 go test -run '^$' -bench Snapshot ./snapshot/
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	size := benchSize(b)
	srv := s3test.Start(b)
	name := srv.NewBucket(b, "bench")
	client := srv.Client()
	bk, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: name, Client: client})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	src := openDB(b, filepath.Join(dir, "src.db"), "WAL")
	fillBytes(b, src, size, 1)
	snap, err := snapshot.Take(ctx, src, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer snap.Remove()
	snapSize := snap.Size

	b.Run("upload/plain-put", func(b *testing.B) {
		b.SetBytes(snapSize)
		for b.Loop() {
			f, err := os.Open(snap.Path())
			if err != nil {
				b.Fatal(err)
			}
			_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("plain.db"), Body: f, ContentLength: aws.Int64(snapSize)})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("flush/changed", func(b *testing.B) {
		b.SetBytes(snapSize)
		var last snapshot.Result
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			run(b, src, "INSERT INTO blobs(b) VALUES (?)", []byte(strconv.Itoa(i)))
			b.StartTimer()
			res, err := snapshot.Flush(ctx, src, bk, "app.db", snapshot.FlushOptions{KeepPrevious: false, LastHash: last.SnapshotHash, IfMatch: last.ETag, TempDir: dir})
			if err != nil || !res.Uploaded {
				b.Fatalf("flush = %+v, %v", res, err)
			}
			last = res
		}
	})
	b.Run("flush/unchanged", func(b *testing.B) {
		b.SetBytes(snapSize)
		last, err := snapshot.Flush(ctx, src, bk, "app.db", snapshot.FlushOptions{Force: true, TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := snapshot.Flush(ctx, src, bk, "app.db", snapshot.FlushOptions{LastHash: last.SnapshotHash, IfMatch: last.ETag, TempDir: dir})
			if err != nil || res.Uploaded {
				b.Fatalf("flush = %+v, %v", res, err)
			}
		}
	})
	b.Run("download/plain-get+check", func(b *testing.B) {
		b.SetBytes(snapSize)
		for b.Loop() {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(name), Key: aws.String("plain.db")})
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(dir, "plain-dl.db")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(f, out.Body)
			out.Body.Close()
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			c, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(path, url.Values{"mode": {"ro"}}))
			if err != nil {
				b.Fatal(err)
			}
			if got := rows(b, c.(*sqlite3.SQLiteConn), "PRAGMA integrity_check"); len(got) != 1 || got[0] != "ok" {
				b.Fatalf("integrity_check: %v", got)
			}
			c.Close()
			os.Remove(path)
		}
	})
	b.Run("restore/file", func(b *testing.B) {
		b.SetBytes(snapSize)
		target := filepath.Join(dir, "restored.db")
		for b.Loop() {
			info, err := snapshot.RestoreFile(ctx, bk, "app.db", target, snapshot.RestoreOptions{})
			if err != nil || !info.Found {
				b.Fatalf("restore = %+v, %v", info, err)
			}
		}
	})
}

// BenchmarkTake measures Take (online backup, PRAGMA quick_check of the
// copy, SHA-256) and, on its own, the quick_check it includes, on a
// database of blobs and on one of small indexed rows (where the check
// does the most work per byte):
//
//	BUCKETSQLITE_BENCH_MB=64 go test -run '^$' -bench Take ./snapshot/
func BenchmarkTake(b *testing.B) {
	ctx := context.Background()
	size := benchSize(b)
	for _, shape := range []string{"blobs", "rows"} {
		dir := b.TempDir()
		src := openDB(b, filepath.Join(dir, "src.db"), "WAL")
		if shape == "blobs" {
			fillBytes(b, src, size, 1)
		} else {
			fillRows(b, src, size)
		}
		snap, err := snapshot.Take(ctx, src, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(shape+"/take", func(b *testing.B) {
			b.SetBytes(snap.Size)
			for b.Loop() {
				f, err := snapshot.Take(ctx, src, dir)
				if err != nil {
					b.Fatal(err)
				}
				f.Remove()
			}
		})
		b.Run(shape+"/quick_check", func(b *testing.B) {
			b.SetBytes(snap.Size)
			for b.Loop() {
				c, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(snap.Path(), url.Values{"mode": {"ro"}}))
				if err != nil {
					b.Fatal(err)
				}
				if got := rows(b, c.(*sqlite3.SQLiteConn), "PRAGMA quick_check"); len(got) != 1 || got[0] != "ok" {
					b.Fatalf("quick_check: %v", got)
				}
				c.Close()
			}
		})
		snap.Remove()
	}
}

// fillRows fills c with about size bytes of small rows under an index.
func fillRows(b *testing.B, c *sqlite3.SQLiteConn, size int64) {
	b.Helper()
	run(b, c, "CREATE TABLE r(id INTEGER PRIMARY KEY, k TEXT, v TEXT)")
	run(b, c, "CREATE INDEX r_k ON r(k)")
	run(b, c, "BEGIN")
	for i := int64(0); i < size/100; i++ {
		run(b, c, "INSERT INTO r(k, v) VALUES (?, ?)", strconv.FormatInt(i*7919%1000003, 36), "value-"+strconv.FormatInt(i, 10)+"-padding-padding-padding")
	}
	run(b, c, "COMMIT")
}
