//go:build cgo

package driver_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
)

// localDSN is a directory-bucket DSN with a persistent working copy.
func localDSN(root, local string) string {
	return "file://" + root + "/app.db?flush_interval=0&local=" + local
}

func syncRecord(t *testing.T, local string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(local + "-bucketsqlite.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A persistent working copy ahead of the bucket (the process died before
// flushing) is kept on reopen and flushed.
func TestLocalAheadIsKeptAndFlushed(t *testing.T) {
	root, local := t.TempDir(), filepath.Join(t.TempDir(), "work", "app.db")
	runChild(t, localDSN(root, local), "create insert:5 flush insert:3 exit")
	if rec := syncRecord(t, local); rec["dirty"] != true {
		t.Fatalf("sync record after unflushed writes: %v; want dirty", rec)
	}
	b, _ := bucket.NewDir(root)
	if n := restoreCount(t, b, "app.db", "t"); n != 5 {
		t.Fatalf("bucket has %d rows before reopen, want 5", n)
	}
	db := mustOpen(t, localDSN(root, local))
	if n := countRows(t, db, "t"); n != 8 {
		t.Fatalf("reopened working copy has %d rows, want all 8", n)
	}
	// The pending writes are flushed without being asked.
	waitFor(t, "the pending flush", func() bool {
		st, _ := driver.GetStats(db)
		return st.Uploads >= 1
	})
	if n := restoreCount(t, b, "app.db", "t"); n != 8 {
		t.Fatalf("bucket has %d rows after reopen, want 8", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if rec := syncRecord(t, local); rec["dirty"] != false {
		t.Fatalf("sync record after Close: %v; want clean", rec)
	}
	if _, err := os.Stat(local); err != nil {
		t.Fatalf("a persistent working copy must survive Close: %v", err)
	}
}

// A clean working copy already at the bucket's snapshot is used without a
// download; a bucket ahead of it wins.
func TestLocalCurrentAndBucketAhead(t *testing.T) {
	root, local := t.TempDir(), filepath.Join(t.TempDir(), "app.db")
	dsn := localDSN(root, local)
	runChild(t, dsn, "create insert:2 close")

	cb := faulty.New(mustDir(t, root))
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(cb))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	if n := countRows(t, db, "t"); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	if d := cb.Calls(faulty.Download); d != 0 || c.Stats().Restored {
		t.Fatalf("a current working copy was downloaded again (%d downloads)", d)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Another machine (its own working copy) moves the bucket ahead.
	other := "file://" + root + "/app.db?flush_interval=0"
	runChild(t, other, "insert:4 close")

	db = mustOpen(t, dsn)
	defer db.Close()
	if n := countRows(t, db, "t"); n != 6 {
		t.Fatalf("%d rows, want the bucket's 6", n)
	}
	if st, _ := driver.GetStats(db); !st.Restored {
		t.Fatalf("the bucket was ahead but nothing was restored: %+v", st)
	}
}

// Unflushed local writes and a bucket that changed meanwhile: an error
// that keeps both.
func TestLocalAndBucketDiverged(t *testing.T) {
	root, local := t.TempDir(), filepath.Join(t.TempDir(), "app.db")
	dsn := localDSN(root, local)
	runChild(t, dsn, "create insert:2 flush insert:1 exit")
	runChild(t, "file://"+root+"/app.db?flush_interval=0", "insert:10 close")
	b := mustDir(t, root)
	before, err := b.Stat(ctx, "app.db")
	if err != nil {
		t.Fatal(err)
	}

	db := mustOpen(t, dsn)
	err = db.Ping()
	if !errors.Is(err, driver.ErrDiverged) || !strings.Contains(err.Error(), local) {
		t.Fatalf("Ping: %v; want ErrDiverged naming %s", err, local)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close after a refused restore: %v", err)
	}
	after, err := b.Stat(ctx, "app.db")
	if err != nil || after.ETag != before.ETag {
		t.Fatalf("the bucket's snapshot changed: %v", err)
	}
	plain, err := sql.Open("sqlite3", local)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if n := countRows(t, plain, "t"); n != 3 {
		t.Fatalf("working copy has %d rows, want its own 3", n)
	}
	if n := restoreCount(t, b, "app.db", "t"); n != 12 {
		t.Fatalf("bucket has %d rows, want the other writer's 12", n)
	}
}

// An existing SQLite file given as the working copy of a new key is
// adopted and becomes the first snapshot.
func TestAdoptExistingFile(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "existing.db")
	plain, err := sql.Open("sqlite3", local)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, plain, "CREATE TABLE t(x)")
	mustExec(t, plain, "INSERT INTO t VALUES (1), (2), (3)")
	plain.Close()
	root := t.TempDir()
	db := mustOpen(t, localDSN(root, local))
	if n := countRows(t, db, "t"); n != 3 {
		t.Fatalf("%d rows", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := restoreCount(t, mustDir(t, root), "app.db", "t"); n != 3 {
		t.Fatalf("bucket has %d rows, want 3", n)
	}
}

// Two databases never share one working copy.
func TestWorkingCopyLocked(t *testing.T) {
	local := filepath.Join(t.TempDir(), "app.db")
	a := mustOpen(t, "mem://locka/a.db?local="+local)
	defer a.Close()
	if err := a.Ping(); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, "mem://lockb/b.db?local="+local)
	defer b.Close()
	if err := b.Ping(); !errors.Is(err, driver.ErrInUse) {
		t.Fatalf("second database on one working copy: %v; want ErrInUse", err)
	}
}

// The working copy and its side files are private to the user.
func TestWorkingCopyIsPrivate(t *testing.T) {
	local := filepath.Join(t.TempDir(), "app.db")
	db := mustOpen(t, "mem://private/app.db?local="+local)
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	for _, p := range []string{local, local + "-wal", local + "-shm", local + "-bucketsqlite.json"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; want no access for group and others", filepath.Base(p), fi.Mode().Perm())
		}
	}
}
