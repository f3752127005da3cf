package snapshot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

func TestValidateKey(t *testing.T) {
	long := func(n int) string { return "db/" + strings.Repeat("x", n-3) }
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"app.db", true},
		{"db/app.db", true},
		{"app.prevx", true},
		{"app.logs/x", true},
		{"catalog.db", true},
		{long(snapshot.MaxKeyLen), true},
		{"app.db.prev", false},
		{"APP.DB.PREV", false},
		{"app.db.probe", false},
		{"app.db.log", false},
		{"app.db.log/0000000000000001", false},
		{"app.db.log/x/y.db", false},
		{long(snapshot.MaxKeyLen + 1), false},
		{long(1021), false},
		{long(1024), false},
		{"", false},
		{"a/../b", false},
	} {
		err := snapshot.ValidateKey(tc.key)
		if tc.ok && err != nil {
			t.Errorf("ValidateKey(%.50q) = %v; want nil", tc.key, err)
		}
		if !tc.ok && !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("ValidateKey(%.50q) = %v; want ErrInvalidKey", tc.key, err)
		}
	}
}

// Every key derived from a valid key fits S3's limit and is refused as a
// snapshot key of its own.
func TestDerivedKeysAreReserved(t *testing.T) {
	key := "db/" + strings.Repeat("k", snapshot.MaxKeyLen-3)
	for _, d := range []string{
		snapshot.PrevKey(key),
		snapshot.ProbeKey(key),
		snapshot.LogKey(key, 9999999999999999),
		strings.TrimSuffix(snapshot.LogPrefix(key), "/"),
	} {
		if err := bucket.ValidateKey(d); err != nil {
			t.Errorf("derived key of %d bytes is not a valid bucket key: %v", len(d), err)
		}
		if err := snapshot.ValidateKey(d); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("derived key %.30q... accepted as a snapshot key: %v", d[len(d)-30:], err)
		}
	}
	if got := snapshot.LogKey("a", 7); got != "a.log/0000000000000007" {
		t.Errorf("LogKey = %q", got)
	}
}

// A database at app.db.prev would be overwritten by app.db's KEY.prev copy
// on app.db's second flush: Flush refuses the key before writing anything.
func TestFlushRefusesReservedKey(t *testing.T) {
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	fill(t, src, 3)
	for _, key := range []string{"app.db.prev", "app.db.probe", "app.db.log/0000000000000001"} {
		_, err := snapshot.Flush(ctx, src, b, key, snapshot.FlushOptions{})
		if !errors.Is(err, bucket.ErrInvalidKey) || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("Flush(%q) = %v; want ErrInvalidKey saying the key is reserved", key, err)
		}
		f, err := snapshot.Take(ctx, src, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.Publish(ctx, f, b, key, snapshot.FlushOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Publish(%q) = %v; want ErrInvalidKey", key, err)
		}
		f.Remove()
	}
	if objs, _ := bucket.ListAll(ctx, b, ""); len(objs) != 0 {
		t.Fatalf("reserved keys were written: %v", objs)
	}
}

// A key of 1021 bytes is valid in S3, but KEY.prev is not: without the
// check, the first flush succeeds and every later one fails.
func TestFlushRefusesKeyWithoutRoomForDerivedKeys(t *testing.T) {
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	key := "db/" + strings.Repeat("k", 1021-3)
	_, err := snapshot.Flush(ctx, src, b, key, snapshot.FlushOptions{KeepPrevious: true})
	if !errors.Is(err, bucket.ErrInvalidKey) {
		t.Fatalf("Flush(1021-byte key) = %v; want ErrInvalidKey", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "1024") || !strings.Contains(msg, "1003") {
		t.Errorf("error does not name the limits (1003 bytes, S3's 1024): %v", err)
	}
}

// Restore reads a previous snapshot, KEY.prev, to recover from it, but no
// other reserved key.
func TestRestoreKeys(t *testing.T) {
	b := bucket.NewMemory()
	dst := newDB(t, "DELETE")
	if _, err := snapshot.Restore(ctx, dst, b, "app.db.prev"); err != nil {
		t.Errorf("Restore(app.db.prev) = %v; want nil (not found)", err)
	}
	for _, key := range []string{"app.db.probe", "app.db.log/0000000000000001", "app.db.prev.prev"} {
		if _, err := snapshot.Restore(ctx, dst, b, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Restore(%q) = %v; want ErrInvalidKey", key, err)
		}
	}
}
