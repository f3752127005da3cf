package snapshot_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// fillBytes grows table blobs with seeded random rows until the database
// holds about size bytes.
func fillBytes(t testing.TB, c *sqlite3.SQLiteConn, size int64, seed uint64) {
	t.Helper()
	run(t, c, "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, b BLOB)")
	rng := rand.New(rand.NewPCG(seed, seed))
	row := make([]byte, 64<<10)
	run(t, c, "BEGIN")
	for n := int64(0); n < size; n += int64(len(row)) {
		for i := range row {
			row[i] = byte(rng.Uint32())
		}
		run(t, c, "INSERT INTO blobs(b) VALUES (?)", row)
	}
	run(t, c, "COMMIT")
}

// A snapshot of 64 MiB goes through a multipart upload (against a real S3
// server, with 8 MiB parts: by default objects up to 512 MiB go in one
// request) and restores intact.
func TestLargeSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB snapshot: skipped with -short")
	}
	multipart := backend{"s3-multipart", func(t *testing.T) bucket.Bucket {
		return newS3With(t, bucket.S3Config{PartSize: 8 << 20})
	}}
	for _, be := range []backend{backends()[1], multipart} {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			src := newDB(t, "WAL")
			fillBytes(t, src, 64<<20, 7)
			want := rows(t, src, "SELECT count(*) || ':' || sum(length(b)) || ':' || hex(substr(max(b), 1, 16)) FROM blobs")[0]
			tmp := t.TempDir()
			res, err := snapshot.Flush(context.Background(), src, b, "big.db", snapshot.FlushOptions{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if res.Size < 64<<20 {
				t.Fatalf("snapshot is %d bytes, want at least 64 MiB", res.Size)
			}
			if _, ok := b.(*bucket.S3); ok && !strings.Contains(res.ETag, "-") {
				t.Errorf("ETag %s is not a multipart ETag", res.ETag)
			}
			dst := newDB(t, "WAL")
			info, err := snapshot.RestoreConn(context.Background(), dst, b, "big.db", snapshot.RestoreOptions{TempDir: tmp})
			if err != nil || info.SnapshotHash != res.SnapshotHash {
				t.Fatalf("restore = %+v, %v", info, err)
			}
			if got := rows(t, dst, "SELECT count(*) || ':' || sum(length(b)) || ':' || hex(substr(max(b), 1, 16)) FROM blobs")[0]; got != want {
				t.Fatalf("restored %s, want %s", got, want)
			}
			assertEmptyDir(t, tmp)
		})
	}
}
