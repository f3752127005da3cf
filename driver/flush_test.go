package driver_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// A flush knows from the working copy itself whether anything was
// committed, whoever committed it: through the pool, from a connection
// whose commit hook the application replaced, or from a connection the
// driver never saw; and with nothing committed it is idle, in both
// kinds of working copy.
func TestFlushSeesEveryCommit(t *testing.T) {
	for _, local := range []bool{false, true} {
		name := "temporary"
		if local {
			name = "local"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mem := "flush-sees-" + name
			defer bucket.ForgetMem(mem)
			dsn := "mem://" + mem + "/db.sqlite?flush_interval=0"
			if local {
				dsn += "&local=" + url.QueryEscape(filepath.Join(t.TempDir(), "work.db"))
			}
			db, err := sql.Open("bucketsqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			flush := func(want string) {
				t.Helper()
				res, err := driver.Flush(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				got := "uploaded"
				switch {
				case res.Idle:
					got = "idle"
				case !res.Uploaded:
					got = "skipped"
				}
				if got != want {
					t.Fatalf("flush %s, want %s", got, want)
				}
			}
			if _, err := db.ExecContext(ctx, "CREATE TABLE t(v TEXT)"); err != nil {
				t.Fatal(err)
			}
			flush("uploaded")
			flush("idle")

			if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES ('pool')"); err != nil {
				t.Fatal(err)
			}
			flush("uploaded")
			flush("idle")

			// An application's own commit hook on a pooled connection.
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !local {
				conn.Raw(func(dc any) error {
					dc.(*sqlite3.SQLiteConn).RegisterCommitHook(func() int { return 0 })
					return nil
				})
			}
			if _, err := conn.ExecContext(ctx, "INSERT INTO t VALUES ('own hook')"); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			flush("uploaded")

			// A connection the driver never saw.
			st, err := driver.GetStats(db)
			if err != nil {
				t.Fatal(err)
			}
			other, err := sql.Open("sqlite3", snapshot.FileDSN(st.LocalPath, url.Values{"_journal_mode": {"WAL"}}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.ExecContext(ctx, "INSERT INTO t VALUES ('outside')"); err != nil {
				t.Fatal(err)
			}
			other.Close()
			flush("uploaded")
			flush("idle")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db, err = sql.Open("bucketsqlite", "mem://"+mem+"/db.sqlite")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 3 {
				t.Fatalf("restored %d rows, %v; want 3", n, err)
			}
		})
	}
}
