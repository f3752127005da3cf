//go:build cgo

package bucket_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Tests that a Dir's object files are what sqlite3 reads: the promise that
// a snapshot is a plain SQLite database at its key.

// makeDB creates a SQLite database at path with table t of n rows.
func makeDB(t *testing.T, path string, n int) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t(x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.Exec("INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
}

// countRows opens the SQLite database at dsn, checks its integrity and
// returns the number of rows of table t.
func countRows(t *testing.T, dsn string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check of %s: %q, %v", dsn, ok, err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("%s: %v", dsn, err)
	}
	return n
}

func TestDirObjectIsSQLiteDatabase(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src.db")
	makeDB(t, src, 3)
	content, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	d := newDir(t)
	md := map[string]string{"sha256": "recorded by the uploader"}
	a, err := d.Upload(ctx, "db/app.db", bytes.NewReader(content), int64(len(content)), bucket.WriteOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.Root(), "db", "app.db")
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ROOT/db/app.db is not the uploaded database (%d bytes, want %d): %v", len(got), len(content), err)
	}
	if n := countRows(t, "file:"+p+"?mode=ro"); n != 3 {
		t.Fatalf("sqlite3 on the object file: %d rows, want 3", n)
	}
	if st, err := d.Stat(ctx, "db/app.db"); err != nil || st.ETag != a.ETag || st.Metadata["sha256"] != md["sha256"] {
		t.Fatalf("Stat after sqlite3 read the file: %+v, %v; want ETag %s and the metadata", st, err, a.ETag)
	}

	// Someone writes to it with sqlite3: the object is then the edited
	// database, without the metadata that described the old one. (The
	// row is large enough to grow the file, so that the edit shows even
	// within one tick of the file system's clock.)
	db, err := sql.Open("sqlite3", p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (zeroblob(10000))"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	edited, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	etag := wantNoMetadata(t, d, "db/app.db", string(edited))
	if etag == a.ETag {
		t.Fatal("the edited database kept its ETag")
	}
}

// A database put in the directory by sqlite3 itself is an object, and
// downloads as a database.
func TestDirSQLiteDatabaseMadeInPlace(t *testing.T) {
	d := newDir(t)
	makeDB(t, filepath.Join(d.Root(), "made.db"), 5)
	dst := filepath.Join(t.TempDir(), "restored.db")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Download(context.Background(), "made.db", f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Metadata) != 0 {
		t.Errorf("a database made in place has metadata %v", a.Metadata)
	}
	if n := countRows(t, dst); n != 5 {
		t.Fatalf("downloaded database: %d rows, want 5", n)
	}
}
