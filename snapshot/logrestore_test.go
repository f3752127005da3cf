package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// logPut uploads a base (with its sha256 and seq 0) and deltas 1, 2, …
// to key in b.
func logPut(t *testing.T, b bucket.Bucket, key string, base []byte, deltas ...*snapshot.Delta) {
	t.Helper()
	ctx := context.Background()
	put := func(k string, data []byte, meta map[string]string) {
		sum := sha256.Sum256(data)
		meta[snapshot.MetaSHA256] = hex.EncodeToString(sum[:])
		if _, err := b.Upload(ctx, k, bytes.NewReader(data), int64(len(data)), bucket.WriteOptions{Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	put(key, base, map[string]string{snapshot.MetaSeq: "0"})
	for _, d := range deltas {
		put(snapshot.LogKey(key, d.Seq), deltaEncode(t, d), map[string]string{})
	}
}

// TestLogRestoreShrinkAndGrow restores a base and a log whose deltas
// change a few pages, shrink the database (VACUUM) and grow it, with and
// without the Image: the restore reads the sums of the pages a delta
// replaces or truncates from the file, and checks the whole image once at
// the end.
func TestLogRestoreShrinkAndGrow(t *testing.T) {
	const pageSize = 1024
	v := deltaVersions(t, pageSize)
	var deltas []*snapshot.Delta
	for i := 1; i < len(v); i++ {
		deltas = append(deltas, deltaDiff(t, uint64(i), v[i-1], v[i], pageSize))
	}
	b := bucket.NewMemory()
	logPut(t, b, "app.db", v[0], deltas...)
	for _, wantImage := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "restored.db")
		info, err := snapshot.RestoreFile(context.Background(), b, "app.db", p, snapshot.RestoreOptions{Image: wantImage})
		if err != nil {
			t.Fatalf("Image %v: %v", wantImage, err)
		}
		if info.Seq != uint64(len(deltas)) || info.Deltas != len(deltas) {
			t.Errorf("Image %v: restored to seq %d with %d deltas, want %d", wantImage, info.Seq, info.Deltas, len(deltas))
		}
		if got := deltaRead(t, p); !bytes.Equal(got, v[len(v)-1]) {
			t.Errorf("Image %v: the restored file differs from the last version", wantImage)
		}
		want := imageOf(t, v[len(v)-1], pageSize)
		switch {
		case !wantImage && info.Image != nil:
			t.Errorf("Image false: got an Image")
		case wantImage && (info.Image == nil || info.Image.Checksum != want.Checksum || len(info.Image.Sums) != len(want.Sums)):
			t.Errorf("Image true: got %+v, want checksum %x", info.Image, want.Checksum)
		}
	}
}

// TestLogRestoreFirstDeltaOfAnotherBase: a first delta computed from
// another base (one row elsewhere differs) applies cleanly page by page
// and leaves a valid SQLite file, but not the database the log describes.
// The restore trusts the first delta's PreChecksum only until the image
// of the whole result is checked, so it must still be ErrCorrupt, with
// nothing written at the path; the same delta on its own base restores.
func TestLogRestoreFirstDeltaOfAnotherBase(t *testing.T) {
	const pageSize = 1024
	dir := t.TempDir()
	path := filepath.Join(dir, "src.db")
	db := deltaDB(t, path)
	deltaExec(t, db,
		"PRAGMA page_size=1024",
		"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE TABLE u(x TEXT)",
		"INSERT INTO u VALUES ('mine')",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500) "+
			"INSERT INTO t(v) SELECT printf('%d-%s', i, hex(randomblob(40))) FROM n")
	base := deltaRead(t, path)
	deltaExec(t, db, "UPDATE t SET v = 'changed' WHERE id = 250")
	next := deltaRead(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The other base: the base with u's row changed, a page the delta
	// does not touch.
	otherPath := filepath.Join(dir, "other.db")
	if err := os.WriteFile(otherPath, base, 0o600); err != nil {
		t.Fatal(err)
	}
	odb := deltaDB(t, otherPath)
	deltaExec(t, odb, "UPDATE u SET x = 'else'")
	if err := odb.Close(); err != nil {
		t.Fatal(err)
	}
	other := deltaRead(t, otherPath)
	if len(other) != len(base) {
		t.Fatalf("the other base has %d bytes, the base %d", len(other), len(base))
	}
	d := deltaDiff(t, 1, base, next, pageSize)

	good := bucket.NewMemory()
	logPut(t, good, "app.db", base, d)
	p := filepath.Join(dir, "good.db")
	if _, err := snapshot.RestoreFile(context.Background(), good, "app.db", p, snapshot.RestoreOptions{}); err != nil {
		t.Fatalf("the delta on its own base: %v", err)
	}
	if !bytes.Equal(deltaRead(t, p), next) {
		t.Fatal("the delta on its own base: the restored file differs")
	}

	bad := bucket.NewMemory()
	logPut(t, bad, "app.db", other, d)
	for _, wantImage := range []bool{false, true} {
		p := filepath.Join(dir, "bad.db")
		_, err := snapshot.RestoreFile(context.Background(), bad, "app.db", p, snapshot.RestoreOptions{Image: wantImage})
		if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), "app.db") {
			t.Errorf("Image %v: restoring a delta of another base: %v; want ErrCorrupt naming app.db", wantImage, err)
		}
		t.Logf("Image %v: refused: %v", wantImage, err)
		if _, serr := os.Stat(p); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("Image %v: a refused restore left %s behind (%v)", wantImage, p, serr)
		}
	}
}
