//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/driver"
)

// importRows replaces db's database with one holding n rows in t, through
// SQLite's backup API into main: a documented way to load a database, and
// one no commit hook sees.
func importRows(db *sql.DB, n int) error {
	src, err := (&sqlite3.SQLiteDriver{}).Open(filepath.Join(tempDirOf(db), "import.db"))
	if err != nil {
		return err
	}
	defer src.Close()
	srcConn := src.(*sqlite3.SQLiteConn)
	if _, err := srcConn.Exec("CREATE TABLE t(x)", nil); err != nil {
		return err
	}
	for i := range n {
		if _, err := srcConn.Exec(fmt.Sprintf("INSERT INTO t VALUES (%d)", i), nil); err != nil {
			return err
		}
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		bk, err := dc.(*sqlite3.SQLiteConn).Backup("main", srcConn, "main")
		if err != nil {
			return err
		}
		if _, err := bk.Step(-1); err != nil {
			bk.Finish()
			return err
		}
		return bk.Finish()
	})
}

// replaceHookAndInsert registers the application's own commit hook on a
// pooled connection (replacing the driver's) and commits through it.
func replaceHookAndInsert(db *sql.DB) error {
	conn, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		dc.(*sqlite3.SQLiteConn).RegisterCommitHook(func() int { return 0 })
		return nil
	}); err != nil {
		return err
	}
	_, err = conn.ExecContext(context.Background(), "INSERT INTO t VALUES (100)")
	return err
}

func tempDirOf(db *sql.DB) string {
	st, _ := driver.GetStats(db)
	return filepath.Dir(st.LocalPath)
}

// Issue 11 #6: writes that no commit hook sees (an import through the
// backup API, a commit hook replaced through Raw) and a process killed
// before the next flush: the next start does not trust the clean sync
// record. It finds the working copy changed behind it and refuses with
// ErrDiverged, both sides kept, instead of saying nothing while the
// bucket lacks the writes, or restoring the bucket's snapshot over them.
func TestLocalWritesBehindTheHook(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		rows         int
	}{
		{"backup import", "create insert:2 flush import:50 exit", 50},
		{"replaced commit hook", "create insert:2 flush hook exit", 3},
	} {
		for _, bucketMoved := range []bool{false, true} {
			name := tc.name
			if bucketMoved {
				name += ", bucket moved on"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				local := filepath.Join(t.TempDir(), "work.db")
				dsn := "file://" + dir + "/app.db?flush_interval=0&local=" + local
				runChild(t, dsn, tc.script)
				if bucketMoved {
					// Another writer moves the bucket on from the
					// snapshot the working copy was synced with.
					other := mustOpen(t, "file://"+dir+"/app.db?flush_interval=0")
					mustExec(t, other, "INSERT INTO t VALUES (7)")
					if err := other.Close(); err != nil {
						t.Fatal(err)
					}
				}
				before := restoreCount(t, mustDir(t, dir), "app.db", "t")
				db := mustOpen(t, dsn)
				err := db.Ping()
				if !errors.Is(err, driver.ErrDiverged) {
					t.Fatalf("reopening a working copy changed behind its record: %v, want ErrDiverged", err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				if after := restoreCount(t, mustDir(t, dir), "app.db", "t"); after != before {
					t.Fatalf("the bucket went from %d rows to %d", before, after)
				}
				kept, err := sql.Open("sqlite3", "file:"+local+"?mode=ro")
				if err != nil {
					t.Fatal(err)
				}
				defer kept.Close()
				if n := countRows(t, kept, "t"); n != tc.rows {
					t.Fatalf("the working copy has %d rows, want the %d written behind the hook", n, tc.rows)
				}
			})
		}
	}
}
