//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// openWith opens key on b with the DSN parameters params.
func openWith(t *testing.T, b bucket.Bucket, key, params string) *sql.DB {
	t.Helper()
	cfg, err := driver.ParseDSN("mem://unused/" + key + "?flush_interval=0&" + params)
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(b))
	if err != nil {
		t.Fatal(err)
	}
	return sql.OpenDB(c)
}

// A server that ignores write conditions (s3rver does) cannot fence a
// second writer: with conditional_writes=probe the first flush finds out
// and refuses, uploading nothing; conditional_writes=off accepts it.
func TestIgnoredConditionsRefused(t *testing.T) {
	ctx := context.Background()
	ignoring := func() *faulty.Bucket {
		fb := faulty.New(bucket.NewMemory())
		fb.Inject(faulty.Any, faulty.Every, faulty.IgnoreConditions())
		return fb
	}
	t.Run("probe", func(t *testing.T) {
		fb := ignoring()
		db := openWith(t, fb, "app.db", "conditional_writes=probe")
		mustExec(t, db, "CREATE TABLE t(x)")
		_, err := driver.Flush(ctx, db)
		if !errors.Is(err, snapshot.ErrConditionsIgnored) {
			t.Fatalf("flush to a bucket that ignores conditions: %v, want ErrConditionsIgnored", err)
		}
		calls := fb.Calls(faulty.Any)
		if _, err := driver.Flush(ctx, db); !errors.Is(err, snapshot.ErrConditionsIgnored) {
			t.Fatalf("second flush: %v", err)
		}
		if n := fb.Calls(faulty.Any); n != calls {
			t.Fatalf("the second flush made %d requests; the probe's answer is kept", n-calls)
		}
		if err := db.Close(); !errors.Is(err, snapshot.ErrConditionsIgnored) {
			t.Fatalf("Close: %v, want ErrConditionsIgnored", err)
		}
		for _, key := range []string{"app.db", "app.db.probe"} {
			if _, err := fb.Inner().Stat(ctx, key); !errors.Is(err, bucket.ErrNotFound) {
				t.Errorf("%s is in the bucket: %v", key, err)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		fb := ignoring()
		db := openWith(t, fb, "app.db", "conditional_writes=off")
		mustExec(t, db, "CREATE TABLE t(x)")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := fb.Inner().Stat(ctx, "app.db"); err != nil {
			t.Fatalf("conditional_writes=off uploaded nothing: %v", err)
		}
	})
	t.Run("enforcing bucket", func(t *testing.T) {
		fb := faulty.New(bucket.NewMemory())
		db := openWith(t, fb, "app.db", "conditional_writes=probe")
		mustExec(t, db, "CREATE TABLE t(x)")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := fb.Inner().Stat(ctx, "app.db.probe"); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("the probe object was left behind: %v", err)
		}
	})
}

// The DSN refuses keys in the namespace a database keeps beside its key,
// and keys that leave no room for it, naming the key.
func TestReservedKeysRefused(t *testing.T) {
	for _, key := range []string{"app.db.prev", "app.db.probe", "app.db.log", "app.db.log/0000000000000001", strings.Repeat("k", 1004)} {
		_, err := driver.ParseDSN("mem://reserved/" + key)
		var de *driver.DSNError
		if !errors.As(err, &de) || de.Param != "key" {
			t.Errorf("key %.30q: %v, want a DSN error naming the key", key, err)
		}
	}
	if _, err := driver.ParseDSN("mem://reserved/" + strings.Repeat("k", 1003)); err != nil {
		t.Errorf("a 1003-byte key: %v", err)
	}
}

// Temp files a killed process left beside a persistent working copy (a
// snapshot being taken, a restore being downloaded) are removed at start.
func TestStaleTempFilesBesideLocalRemoved(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "work.db")
	stale := []string{filepath.Join(dir, ".bucketsqlite-snapshot-123.db"), filepath.Join(dir, ".bucketsqlite-restore-456.db")}
	for _, f := range stale {
		if err := os.WriteFile(f, []byte("a full-size snapshot"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mem := "stale-beside-local"
	defer bucket.ForgetMem(mem)
	db := mustOpen(t, "mem://"+mem+"/app.db?flush_interval=0&local="+local)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", f, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
