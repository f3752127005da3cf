package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

var ctx = context.Background()

func TestRestoreMissing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		dst := newDB(t, "WAL")
		fill(t, dst, 3)
		tmp := t.TempDir()
		ok, err := snapshot.Restore(ctx, dst, b, "missing.db")
		if err != nil || ok {
			t.Fatalf("Restore(missing) = %v, %v; want false, nil", ok, err)
		}
		if got := count(t, dst); got != "3" {
			t.Fatalf("destination changed: %s rows", got)
		}
		info, err := snapshot.RestoreFile(ctx, b, "missing.db", filepath.Join(tmp, "x.db"), snapshot.RestoreOptions{})
		if err != nil || info.Found {
			t.Fatalf("RestoreFile(missing) = %+v, %v", info, err)
		}
		assertEmptyDir(t, tmp)
	})
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range []string{"DELETE", "WAL"} {
		t.Run(mode, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
				tmp := t.TempDir()
				src := newDB(t, mode)
				fill(t, src, 100)
				res, err := snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{TempDir: tmp})
				if err != nil {
					t.Fatal(err)
				}
				if !res.Uploaded || res.BytesWritten == 0 || res.ETag == "" || len(res.SnapshotHash) != 64 {
					t.Fatalf("first flush result %+v", res)
				}
				data, attrs := download(t, b, "app.db")
				sum := sha256.Sum256(data)
				if got := hex.EncodeToString(sum[:]); got != res.SnapshotHash || attrs.Metadata[snapshot.MetaSHA256] != got {
					t.Fatalf("hash: result %s, metadata %s, bytes %s", res.SnapshotHash, attrs.Metadata[snapshot.MetaSHA256], got)
				}
				if attrs.ETag != res.ETag {
					t.Fatalf("ETag: result %s, object %s", res.ETag, attrs.ETag)
				}
				// The uploaded header says rollback journal, whatever the
				// source's mode: the file needs no -wal beside it.
				if data[18] != 1 || data[19] != 1 {
					t.Fatalf("snapshot header versions %d/%d, want 1/1", data[18], data[19])
				}

				dst := newDB(t, mode)
				info, err := snapshot.RestoreConn(ctx, dst, b, "app.db", snapshot.RestoreOptions{TempDir: tmp})
				if err != nil || !info.Found {
					t.Fatalf("RestoreConn = %+v, %v", info, err)
				}
				if info.ETag != res.ETag || info.SnapshotHash != res.SnapshotHash || info.Size != res.Size {
					t.Fatalf("restore info %+v, flush result %+v", info, res)
				}
				if got := count(t, dst); got != "100" {
					t.Fatalf("restored %s rows, want 100", got)
				}
				if got := rows(t, dst, "SELECT v FROM t WHERE id = 42")[0]; got != "row-41" {
					t.Fatalf("row 42 = %q", got)
				}

				path := filepath.Join(t.TempDir(), "work.db")
				info, err = snapshot.RestoreFile(ctx, b, "app.db", path, snapshot.RestoreOptions{Check: snapshot.CheckQuick})
				if err != nil || !info.Found {
					t.Fatalf("RestoreFile = %+v, %v", info, err)
				}
				if got := count(t, openDB(t, path, mode)); got != "100" {
					t.Fatalf("RestoreFile: %s rows", got)
				}
				assertEmptyDir(t, tmp)
			})
		})
	}
}

// Two flushes with nothing written in between give byte-identical
// snapshots, so the second uploads nothing: the skip depends on it.
func TestFlushUnchangedSkips(t *testing.T) {
	for _, mode := range []string{"DELETE", "WAL"} {
		t.Run(mode, func(t *testing.T) {
			b := bucket.NewMemory()
			tmp := t.TempDir()
			src := newDB(t, mode)
			fill(t, src, 500)
			f1, err := snapshot.Take(ctx, src, tmp)
			if err != nil {
				t.Fatal(err)
			}
			f2, err := snapshot.Take(ctx, src, tmp)
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := os.ReadFile(f1.Path())
			b2, _ := os.ReadFile(f2.Path())
			f1.Remove()
			f2.Remove()
			if !bytes.Equal(b1, b2) || f1.Hash != f2.Hash {
				t.Fatalf("two snapshots of an unchanged database differ")
			}

			r1, err := snapshot.Flush(ctx, src, b, "k", snapshot.FlushOptions{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			r2, err := snapshot.Flush(ctx, src, b, "k", snapshot.FlushOptions{TempDir: tmp, LastHash: r1.SnapshotHash, IfMatch: r1.ETag, KeepPrevious: true})
			if err != nil {
				t.Fatal(err)
			}
			if r2.Uploaded || r2.BytesWritten != 0 || r2.SnapshotHash != r1.SnapshotHash || r2.ETag != r1.ETag || r2.KeptPrevious {
				t.Fatalf("unchanged flush = %+v, first %+v", r2, r1)
			}
			if _, err := b.Stat(ctx, "k.prev"); !errors.Is(err, bucket.ErrNotFound) {
				t.Fatalf("unchanged flush copied k.prev: %v", err)
			}
			// One write later the hash differs and it uploads.
			run(t, src, "INSERT INTO t(v) VALUES ('more')")
			r3, err := snapshot.Flush(ctx, src, b, "k", snapshot.FlushOptions{TempDir: tmp, LastHash: r1.SnapshotHash, IfMatch: r1.ETag})
			if err != nil || !r3.Uploaded || r3.SnapshotHash == r1.SnapshotHash {
				t.Fatalf("changed flush = %+v, %v", r3, err)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func TestKeepPrevious(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		src := newDB(t, "WAL")
		fill(t, src, 10)
		r1, err := snapshot.Flush(ctx, src, b, "db/app.db", snapshot.FlushOptions{KeepPrevious: true})
		if err != nil {
			t.Fatal(err)
		}
		if r1.KeptPrevious {
			t.Fatal("first flush claims to have kept a previous snapshot")
		}
		if _, err := b.Stat(ctx, "db/app.db.prev"); !errors.Is(err, bucket.ErrNotFound) {
			t.Fatalf("first flush wrote .prev: %v", err)
		}
		fill(t, src, 5)
		r2, err := snapshot.Flush(ctx, src, b, "db/app.db", snapshot.FlushOptions{KeepPrevious: true, LastHash: r1.SnapshotHash, IfMatch: r1.ETag})
		if err != nil || !r2.Uploaded || !r2.KeptPrevious {
			t.Fatalf("second flush = %+v, %v", r2, err)
		}
		prev := newDB(t, "DELETE")
		if ok, err := snapshot.Restore(ctx, prev, b, "db/app.db.prev"); !ok || err != nil {
			t.Fatalf("restore .prev: %v %v", ok, err)
		}
		if got := count(t, prev); got != "10" {
			t.Fatalf(".prev has %s rows, want the first flush's 10", got)
		}
		cur := newDB(t, "DELETE")
		if ok, err := snapshot.Restore(ctx, cur, b, "db/app.db"); !ok || err != nil {
			t.Fatalf("restore: %v %v", ok, err)
		}
		if got := count(t, cur); got != "15" {
			t.Fatalf("current has %s rows, want 15", got)
		}
	})
}

func TestConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		a := newDB(t, "WAL")
		fill(t, a, 1)
		base, err := snapshot.Flush(ctx, a, b, "k", snapshot.FlushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A second writer restores the same snapshot and flushes first.
		w2 := newDB(t, "WAL")
		info, err := snapshot.RestoreConn(ctx, w2, b, "k", snapshot.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fill(t, w2, 2)
		won, err := snapshot.Flush(ctx, w2, b, "k", snapshot.FlushOptions{IfMatch: info.ETag, KeepPrevious: true})
		if err != nil {
			t.Fatal(err)
		}
		// The first writer's flush now conflicts, with or without .prev.
		fill(t, a, 5)
		for _, keep := range []bool{false, true} {
			_, err = snapshot.Flush(ctx, a, b, "k", snapshot.FlushOptions{IfMatch: base.ETag, LastHash: base.SnapshotHash, KeepPrevious: keep})
			if !errors.Is(err, snapshot.ErrConflict) || !errors.Is(err, snapshot.ErrSnapshot) {
				t.Fatalf("stale flush (keep %v): %v; want ErrConflict", keep, err)
			}
			if !strings.Contains(err.Error(), `"k"`) {
				t.Errorf("error does not name the key: %v", err)
			}
		}
		// A first flush (no ETag) never overwrites an existing snapshot.
		fresh := newDB(t, "WAL")
		if _, err := snapshot.Flush(ctx, fresh, b, "k", snapshot.FlushOptions{}); !errors.Is(err, snapshot.ErrConflict) {
			t.Fatalf("first flush over an existing snapshot: %v; want ErrConflict", err)
		}
		st, err := b.Stat(ctx, "k")
		if err != nil || st.ETag != won.ETag {
			t.Fatalf("object changed by a conflicting flush: %+v %v (want ETag %s)", st, err, won.ETag)
		}
		got := newDB(t, "WAL")
		if _, err := snapshot.Restore(ctx, got, b, "k"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, got); n != "3" {
			t.Fatalf("winner's snapshot has %s rows, want 3", n)
		}
		// Force overwrites on purpose.
		if _, err := snapshot.Flush(ctx, a, b, "k", snapshot.FlushOptions{Force: true, KeepPrevious: true}); err != nil {
			t.Fatalf("forced flush: %v", err)
		}
	})
}

func TestRestoreCorrupt(t *testing.T) {
	src := newDB(t, "WAL")
	fill(t, src, 2000)
	f, err := snapshot.Take(ctx, src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(f.Path())
	f.Remove()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	garbage := bytes.Clone(good)
	for i := 4096; i < len(garbage); i++ { // keep page 1 (header and schema), trash the rest
		garbage[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256([]byte("something else"))
	cases := []struct {
		name string
		data []byte
		meta map[string]string
		want string
	}{
		{"random bytes", random, nil, "not a valid SQLite file"},
		{"empty object", nil, nil, "empty"},
		{"truncated", good[:len(good)/2], nil, "truncated"},
		{"truncated mid-page", good[:len(good)/2+100], nil, "truncated"},
		{"garbage pages", garbage, nil, "integrity check"},
		{"sha256 mismatch", good, map[string]string{snapshot.MetaSHA256: hex.EncodeToString(sum[:])}, "sha256 mismatch"},
	}
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tmp := t.TempDir()
				upload(t, b, "bad.db", tc.data, tc.meta)
				dst := newDB(t, "WAL")
				fill(t, dst, 7)
				ok, err := snapshot.RestoreConn(ctx, dst, b, "bad.db", snapshot.RestoreOptions{TempDir: tmp})
				if !errors.Is(err, snapshot.ErrCorrupt) || !errors.Is(err, snapshot.ErrSnapshot) {
					t.Fatalf("Restore = %v, %v; want ErrCorrupt", ok, err)
				}
				if !strings.Contains(err.Error(), `"bad.db"`) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q should name the key and say %q", err, tc.want)
				}
				if got := count(t, dst); got != "7" {
					t.Fatalf("destination changed: %s rows", got)
				}
				// RestoreFile leaves the target as it was.
				target := filepath.Join(tmp, "work.db")
				os.WriteFile(target, []byte("keep me"), 0o600)
				if _, err := snapshot.RestoreFile(ctx, b, "bad.db", target, snapshot.RestoreOptions{}); !errors.Is(err, snapshot.ErrCorrupt) {
					t.Fatalf("RestoreFile = %v; want ErrCorrupt", err)
				}
				if data, _ := os.ReadFile(target); string(data) != "keep me" {
					t.Fatalf("RestoreFile changed its target")
				}
				os.Remove(target)
				assertEmptyDir(t, tmp)
			})
		}
	})
}

// A snapshot as the Python original writes it: no sha256 metadata, and a
// header still saying WAL (it backs up a WAL database as is).
func TestRestoresPythonSnapshot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "py.db")
	src := openDB(t, path, "WAL")
	fill(t, src, 25)
	run(t, src, "PRAGMA wal_checkpoint(TRUNCATE)")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if data[18] != 2 {
		t.Fatalf("setup: header version %d, want WAL's 2", data[18])
	}
	b := bucket.NewMemory()
	upload(t, b, "py.db", data, nil)
	target := filepath.Join(t.TempDir(), "restored.db")
	info, err := snapshot.RestoreFile(ctx, b, "py.db", target, snapshot.RestoreOptions{})
	if err != nil || !info.Found {
		t.Fatalf("RestoreFile = %+v, %v", info, err)
	}
	if got := count(t, openDB(t, target, "DELETE")); got != "25" {
		t.Fatalf("restored %s rows", got)
	}
}

// The snapshot opens in the sqlite3 shell with no -wal beside it.
func TestSnapshotOpensInSQLiteShell(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell on this machine; TestRoundTrip checks the header")
	}
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	fill(t, src, 12)
	if _, err := snapshot.Flush(ctx, src, b, "app.db", snapshot.FlushOptions{}); err != nil {
		t.Fatal(err)
	}
	data, _ := download(t, b, "app.db")
	dir := t.TempDir()
	path := filepath.Join(dir, "downloaded.db")
	os.WriteFile(path, data, 0o600)
	out, err := exec.Command(sqlite3, "-readonly", path, "PRAGMA journal_mode; SELECT count(*) FROM t;").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "delete" || got[1] != "12" {
		t.Fatalf("sqlite3 printed %q; want journal mode delete and 12 rows", out)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("opening the snapshot created a -wal file")
	}
}

// A writer holding the database's lock makes the backup wait, with
// backoff, until ctx ends: no spinning, no hang, and it succeeds once the
// lock goes away.
func TestFlushWaitsForLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	src := openDB(t, path, "DELETE")
	fill(t, src, 10)
	writer := openDB(t, path, "DELETE")
	run(t, writer, "BEGIN EXCLUSIVE")
	run(t, writer, "INSERT INTO t(v) VALUES ('locked')")
	tmp := t.TempDir()
	b := bucket.NewMemory()

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := snapshot.Flush(short, src, b, "k", snapshot.FlushOptions{TempDir: tmp})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush under an exclusive lock = %v; want a deadline error", err)
	}
	assertEmptyDir(t, tmp)

	go func() {
		time.Sleep(200 * time.Millisecond)
		run(t, writer, "COMMIT")
	}()
	res, err := snapshot.Flush(ctx, src, b, "k", snapshot.FlushOptions{TempDir: tmp})
	if err != nil || !res.Uploaded {
		t.Fatalf("flush after the lock = %+v, %v", res, err)
	}
	got := newDB(t, "DELETE")
	snapshot.Restore(ctx, got, b, "k")
	if n := count(t, got); n != "11" {
		t.Fatalf("snapshot has %s rows, want 11", n)
	}
	assertEmptyDir(t, tmp)
}

func TestCancelledFlushLeavesNothing(t *testing.T) {
	src := newDB(t, "WAL")
	fill(t, src, 10)
	tmp := t.TempDir()
	b := bucket.NewMemory()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := snapshot.Flush(cctx, src, b, "k", snapshot.FlushOptions{TempDir: tmp}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled flush = %v", err)
	}
	if _, err := b.Stat(ctx, "k"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("cancelled flush wrote the object: %v", err)
	}
	assertEmptyDir(t, tmp)
}

func TestRestoreFileReplacesStaleSideFiles(t *testing.T) {
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	fill(t, src, 3)
	if _, err := snapshot.Flush(ctx, src, b, "k", snapshot.FlushOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "work.db")
	for _, side := range []string{"", "-wal", "-shm"} {
		os.WriteFile(target+side, []byte("stale"), 0o600)
	}
	if _, err := snapshot.RestoreFile(ctx, b, "k", target, snapshot.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(target + side); err == nil {
			t.Errorf("stale %s left beside the restored file", side)
		}
	}
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if got := count(t, openDB(t, target, "WAL")); got != "3" {
		t.Fatalf("restored %s rows", got)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "restore") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

func TestInvalidKey(t *testing.T) {
	b := bucket.NewMemory()
	src := newDB(t, "WAL")
	for _, key := range []string{"", "/abs", "a/../b"} {
		if _, err := snapshot.Flush(ctx, src, b, key, snapshot.FlushOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Flush(%q) = %v; want ErrInvalidKey", key, err)
		}
		if _, err := snapshot.Restore(ctx, src, b, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("Restore(%q) = %v; want ErrInvalidKey", key, err)
		}
	}
}
