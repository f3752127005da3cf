package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/sqlite3"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/pressly/goose/v3"
)

var tools = []string{toolGoose, toolGolangMigrate}

// memBuckets numbers memory buckets, so that each test, also with
// -count=N, has a new one.
var memBuckets atomic.Int64

// memDSN returns a DSN in a new memory bucket.
func memDSN(tool string) string {
	return fmt.Sprintf("mem://examples-migrate-%s-%d/app.db", tool, memBuckets.Add(1))
}

// open opens dsn with bucketsqlite and closes it, checking the final
// flush, when t ends.
func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close (final flush): %v", err)
		}
	})
	return db
}

// versionRows returns the rows of tool's version table, as "version,flag"
// strings in order.
func versionRows(t *testing.T, db *sql.DB, tool string) []string {
	t.Helper()
	q := "SELECT version_id || ',' || is_applied FROM goose_db_version ORDER BY id"
	if tool == toolGolangMigrate {
		q = "SELECT version || ',' || dirty FROM schema_migrations"
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Two runs of the program on a directory bucket, for each tool: the first
// applies both migrations, the second, after close and reopen (so a
// restore from the bucket), applies none, keeps the version table as it
// was and sees the first run's note.
func TestRunsMigrateOnce(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			dsn := "file://" + t.TempDir() + "/app.db"
			var first, second bytes.Buffer
			if err := run(context.Background(), []string{"-tool", tool, "-dsn", dsn, "-note", "hello"}, &first); err != nil {
				t.Fatalf("first run: %v\n%s", err, &first)
			}
			if err := run(context.Background(), []string{"-tool", tool, "-dsn", dsn, "-note", "again"}, &second); err != nil {
				t.Fatalf("second run: %v\n%s", err, &second)
			}
			t.Logf("first run:\n%s\nsecond run:\n%s", &first, &second)
			if want := tool + ": applied 2 migration(s); schema version 2\n  note 1: hello\n"; first.String() != want {
				t.Errorf("first run says\n%s\nwant\n%s", &first, want)
			}
			if want := tool + ": applied 0 migration(s); schema version 2\n  note 1: hello\n  note 2: again\n"; second.String() != want {
				t.Errorf("second run says\n%s\nwant\n%s", &second, want)
			}

			want := wantVersions(tool)
			if got := strings.Join(versionRows(t, open(t, dsn), tool), " "); got != want {
				t.Errorf("version table after two runs: %s; want %s", got, want)
			}
		})
	}
}

// withThird returns the tool's embedded migrations plus a third one.
func withThird(t *testing.T, tool string) fs.FS {
	t.Helper()
	sub := mustSub("migrations/" + tool)
	m := fstest.MapFS{}
	err := fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		m[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if tool == toolGoose {
		m["00003_add_tags.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE tags (note_id INTEGER NOT NULL REFERENCES notes(id), tag TEXT NOT NULL);\n-- +goose Down\nDROP TABLE tags;\n")}
	} else {
		m["000003_add_tags.up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE tags (note_id INTEGER NOT NULL REFERENCES notes(id), tag TEXT NOT NULL);\n")}
		m["000003_add_tags.down.sql"] = &fstest.MapFile{Data: []byte("DROP TABLE tags;\n")}
	}
	return m
}

// up runs tool's migrations in fsys on db.
func up(t *testing.T, tool string, db *sql.DB, fsys fs.FS) (applied int, version int64) {
	t.Helper()
	var err error
	if tool == toolGoose {
		applied, version, err = gooseUp(context.Background(), db, fsys)
	} else {
		applied, version, err = golangMigrateUp(db, fsys)
	}
	if err != nil {
		t.Fatalf("%s up: %v", tool, err)
	}
	return applied, version
}

// A release that adds a migration: after reopening (a restore from the
// memory bucket), only the new migration runs; a third open applies
// nothing.
func TestNewMigrationAfterReopen(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			dsn := memDSN(tool)
			steps := []struct {
				fsys    fs.FS
				applied int
				version int64
			}{
				{mustSub("migrations/" + tool), 2, 2},
				{withThird(t, tool), 1, 3},
				{withThird(t, tool), 0, 3},
			}
			for i, s := range steps {
				db, err := sql.Open("bucketsqlite", dsn)
				if err != nil {
					t.Fatal(err)
				}
				applied, version := up(t, tool, db, s.fsys)
				if applied != s.applied || version != s.version {
					t.Errorf("open %d: applied %d, version %d; want %d, %d", i+1, applied, version, s.applied, s.version)
				}
				if err := db.Close(); err != nil {
					t.Fatalf("open %d: close (final flush): %v", i+1, err)
				}
			}
			db := open(t, dsn)
			if _, err := db.Exec("INSERT INTO notes(body) VALUES ('x'); INSERT INTO tags VALUES (1, 'y')"); err != nil {
				t.Errorf("the third migration's table after reopening: %v", err)
			}
		})
	}
}

// upAndClose runs tool's embedded migrations on db, then the tool's Close,
// and returns that Close's error: db.Close's, since both tools close the
// *sql.DB they were given.
func upAndClose(t *testing.T, tool string, db *sql.DB) error {
	t.Helper()
	switch tool {
	case toolGoose:
		p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub("migrations/goose"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Up(context.Background()); err != nil {
			t.Fatal(err)
		}
		return p.Close() // db.Close
	default:
		drv, err := sqlite3.WithInstance(db, &sqlite3.Config{})
		if err != nil {
			t.Fatal(err)
		}
		src, err := iofs.New(mustSub("migrations/golang-migrate"), ".")
		if err != nil {
			t.Fatal(err)
		}
		m, err := migrate.NewWithInstance("iofs", src, "sqlite3", drv)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Up(); err != nil {
			t.Fatal(err)
		}
		srcErr, dbErr := m.Close() // the second is db.Close
		if srcErr != nil {
			t.Fatal(srcErr)
		}
		return dbErr
	}
}

// wantVersions is tool's version table once both embedded migrations ran.
func wantVersions(tool string) string {
	if tool == toolGolangMigrate {
		return "2,0" // golang-migrate: one row, version 2, not dirty
	}
	return "0,1 1,1 2,1" // goose: a row per version, 0 for the table itself
}

// What the README says about the tools' Close, checked: goose's
// Provider.Close and golang-migrate's Migrate.Close close the *sql.DB they
// were given, which for bucketsqlite runs the final flush and returns its
// error. The pattern "migrate, let the tool close, open again" therefore
// loses nothing: the reopened database restores the migrated schema.
func TestToolCloseClosesYourDB(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			dsn := "file://" + t.TempDir() + "/app.db"
			db, err := sql.Open("bucketsqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := upAndClose(t, tool, db); err != nil {
				t.Fatalf("%s Close (final flush): %v", tool, err)
			}
			if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "database is closed") {
				t.Fatalf("Ping after the tool's Close: %v; want sql: database is closed", err)
			}
			// Close after the tool's: database/sql returns nil, and so
			// would have hidden a failed final flush.
			if err := db.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}

			// Open again: the migrated schema came back from the bucket.
			db = open(t, dsn)
			if applied, version := up(t, tool, db, mustSub("migrations/"+tool)); applied != 0 || version != 2 {
				t.Errorf("after reopening: applied %d, version %d; want 0, 2", applied, version)
			}
		})
	}
}

// The README's third way: the tool gets a *sql.DB of its own, a second
// sql.Open of the app's DSN, which shares the database. The tool's Close
// closes that handle only, flushing what was committed; the app's handle
// stays open, sees the migrated schema, and its Close (the last handle's)
// runs the final flush.
func TestToolOwnHandleKeepsYours(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			dir := t.TempDir()
			dsn := "file://" + dir + "/app.db"
			app, err := sql.Open("bucketsqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close() // after a failure; the checked Close is below
			// The app is running: its first query restored the database.
			if err := app.Ping(); err != nil {
				t.Fatal(err)
			}
			migrator, err := sql.Open("bucketsqlite", dsn)
			if err != nil {
				t.Fatalf("second sql.Open of the same DSN: %v", err)
			}
			if err := upAndClose(t, tool, migrator); err != nil {
				t.Fatalf("%s Close (the tool's handle): %v", tool, err)
			}
			if err := migrator.Ping(); err == nil || !strings.Contains(err.Error(), "database is closed") {
				t.Fatalf("Ping on the tool's handle after its Close: %v; want sql: database is closed", err)
			}

			// The tool's Close flushed the migrated schema: the directory
			// bucket's snapshot, a plain SQLite file, holds it already.
			snap, err := sql.Open("sqlite3", "file:"+dir+"/app.db?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(versionRows(t, snap, tool), " "); got != wantVersions(tool) {
				t.Errorf("version table in the bucket after the tool's Close: %s; want %s", got, wantVersions(tool))
			}
			if err := snap.Close(); err != nil {
				t.Fatal(err)
			}

			// The app's handle still works and sees the migrated schema.
			if err := app.Ping(); err != nil {
				t.Fatalf("the app's handle after the tool's Close: %v", err)
			}
			if got := strings.Join(versionRows(t, app, tool), " "); got != wantVersions(tool) {
				t.Errorf("version table through the app's handle: %s; want %s", got, wantVersions(tool))
			}
			if _, err := app.Exec("INSERT INTO notes(body) VALUES ('after migrating')"); err != nil {
				t.Fatalf("write through the app's handle: %v", err)
			}
			if err := app.Close(); err != nil {
				t.Fatalf("the app's Close (final flush): %v", err)
			}

			// Open again: the bucket holds the migrated schema and the
			// app's write.
			db := open(t, dsn)
			if applied, version := up(t, tool, db, mustSub("migrations/"+tool)); applied != 0 || version != 2 {
				t.Errorf("after reopening: applied %d, version %d; want 0, 2", applied, version)
			}
			var body string
			if err := db.QueryRow("SELECT body FROM notes ORDER BY id DESC LIMIT 1").Scan(&body); err != nil || body != "after migrating" {
				t.Errorf("last note after reopening: %q, %v; want %q", body, err, "after migrating")
			}
		})
	}
}

func TestRunRejectsUnknownTool(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-tool", "flyway", "-dsn", "mem://x/app.db"}, &out)
	if err == nil || !strings.Contains(err.Error(), "flyway") {
		t.Fatalf("run -tool flyway: %v", err)
	}
}

// A failing migration is an error and leaves the database at the last
// good version.
func TestFailingMigration(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			fsys := withThird(t, tool).(fstest.MapFS)
			if tool == toolGoose {
				fsys["00003_add_tags.sql"].Data = []byte("-- +goose Up\nCREATE TABLE notes (x);\n-- +goose Down\n")
			} else {
				fsys["000003_add_tags.up.sql"].Data = []byte("CREATE TABLE notes (x);\n")
			}
			db := open(t, memDSN(tool))
			var err error
			if tool == toolGoose {
				_, _, err = gooseUp(context.Background(), db, fsys)
			} else {
				_, _, err = golangMigrateUp(db, fsys)
			}
			if err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("up with a failing migration: %v; want table notes already exists", err)
			}
			if tool == toolGoose {
				if got := strings.Join(versionRows(t, db, tool), " "); got != "0,1 1,1 2,1" {
					t.Errorf("goose version table: %s; want versions 0 to 2", got)
				}
			} else if got := strings.Join(versionRows(t, db, tool), " "); got != "3,1" {
				// golang-migrate marks the version dirty; a human fixes it and forces a version.
				t.Errorf("golang-migrate version table: %s; want 3,1 (dirty)", got)
			}
		})
	}
}
