package snapshot_test

import (
	"path/filepath"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/snapshot"
)

func dataVersion(t *testing.T, c *sqlite3.SQLiteConn) int64 {
	t.Helper()
	v, err := snapshot.DataVersion(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A snapshot's DataVersion is its source's data version for as long as
// no other connection commits, in both journal modes; inside a
// transaction of the caller's, Take leaves that transaction open.
func TestTakeDataVersion(t *testing.T) {
	for _, mode := range []string{"WAL", "DELETE"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db.sqlite")
			src := openDB(t, path, mode)
			fill(t, src, 10)
			writer := openDB(t, path, mode)
			tmp := t.TempDir()

			f, err := snapshot.Take(ctx, src, tmp)
			if err != nil {
				t.Fatal(err)
			}
			f.Remove()
			if !src.AutoCommit() {
				t.Fatal("Take left a transaction open on its source")
			}
			if v := dataVersion(t, src); v != f.DataVersion {
				t.Fatalf("nothing committed: data version %d, snapshot's %d", v, f.DataVersion)
			}
			run(t, writer, "INSERT INTO t(v) VALUES ('new')")
			if v := dataVersion(t, src); v == f.DataVersion {
				t.Fatalf("another connection committed, and the data version is still the snapshot's %d", v)
			}

			run(t, src, "BEGIN")
			g, err := snapshot.Take(ctx, src, tmp)
			if err != nil {
				t.Fatal(err)
			}
			g.Remove()
			if src.AutoCommit() {
				t.Fatal("Take ended the caller's transaction")
			}
			run(t, src, "COMMIT")
			if v := dataVersion(t, src); v != g.DataVersion {
				t.Fatalf("nothing committed since: data version %d, snapshot's %d", v, g.DataVersion)
			}
			assertEmptyDir(t, tmp)
		})
	}
}
