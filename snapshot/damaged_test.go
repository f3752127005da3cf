package snapshot_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// A database damaged in place (as journal_mode=OFF can leave one after a
// rolled-back transaction spilled to disk) is never uploaded over a sound
// snapshot: Flush returns ErrCorrupt naming the key.
func TestFlushRefusesDamagedDatabase(t *testing.T) {
	b := bucket.NewMemory()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	src := openDB(t, path, "DELETE")
	run(t, src, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	run(t, src, "CREATE INDEX t_v ON t(v)")
	fill(t, src, 2000)
	good, err := snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src.Close()

	// Damage a b-tree page of the index: its page type byte.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	pageSize := int64(binary.BigEndian.Uint16(hdr[16:18]))
	pages := int64(binary.BigEndian.Uint32(hdr[28:32]))
	if _, err := f.WriteAt([]byte{0x6b}, (pages-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()

	src = openDB(t, path, "DELETE")
	_, err = snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{IfMatch: good.ETag, LastHash: good.SnapshotHash, KeepPrevious: true})
	var se *snapshot.Error
	if !errors.Is(err, snapshot.ErrCorrupt) || !errors.As(err, &se) || se.Key != "app.db" {
		t.Fatalf("flush of a damaged database = %v; want ErrCorrupt naming app.db", err)
	}
	if a, err := b.Stat(ctx, "app.db"); err != nil || a.ETag != good.ETag {
		t.Fatalf("the sound snapshot was replaced: %+v, %v", a, err)
	}
	if _, err := b.Stat(ctx, "app.db.prev"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("app.db.prev was written: %v", err)
	}
}
