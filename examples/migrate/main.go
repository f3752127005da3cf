package main

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/sqlite3"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/pressly/goose/v3"

	_ "github.com/buckethead/bucketsqlite/driver" // registers the "bucketsqlite" driver
)

// migrations holds both tools' migrations: goose's annotated files in
// migrations/goose, golang-migrate's up and down pairs in
// migrations/golang-migrate. Both create the same schema.
//
//go:embed migrations
var migrations embed.FS

// The tools this program knows.
const (
	toolGoose         = "goose"
	toolGolangMigrate = "golang-migrate"
)

func main() {
	// Ctrl-C or SIGTERM cancels ctx: the query running fails, run returns,
	// and its deferred Close still runs the final flush. (Without this, a
	// signal ends the process at once, and the writes since the last
	// flush never reach the bucket.)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends the process at once
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

// run is the program, apart from main so that tests can run it. Its error
// includes the final flush's: the deferred Close sets it.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	tool := fs.String("tool", toolGoose, "migration tool: goose or golang-migrate")
	dsn := fs.String("dsn", "", "bucketsqlite DSN (default file:data/bucket/migrate-TOOL.db, relative to the current directory)")
	note := fs.String("note", "hello", "the note this run records")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tool != toolGoose && *tool != toolGolangMigrate {
		return fmt.Errorf("-tool %q: want %s or %s", *tool, toolGoose, toolGolangMigrate)
	}
	if *dsn == "" {
		*dsn = "file:data/bucket/migrate-" + *tool + ".db"
	}

	db, err := sql.Open("bucketsqlite", *dsn)
	if err != nil {
		return err
	}
	// The one Close of this *sql.DB, and so the final flush: the migration
	// tools' own Close would close it too, so they are not called.
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close (final flush): %w", cerr))
		}
	}()

	var applied int
	var version int64
	switch *tool {
	case toolGoose:
		applied, version, err = gooseUp(ctx, db, mustSub("migrations/goose"))
	case toolGolangMigrate:
		applied, version, err = golangMigrateUp(db, mustSub("migrations/golang-migrate"))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *tool, err)
	}
	fmt.Fprintf(stdout, "%s: applied %d migration(s); schema version %d\n", *tool, applied, version)

	now := time.Now().UTC().Format(time.RFC3339)
	if _, err := db.ExecContext(ctx, "INSERT INTO notes(body, created_at) VALUES (?, ?)", *note, now); err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, body FROM notes ORDER BY id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  note %d: %s\n", id, body)
	}
	return rows.Err()
}

// mustSub returns the embedded directory dir as a file system of its own.
func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		panic(err) // dir is a constant naming an embedded directory
	}
	return sub
}

// gooseUp applies the goose migrations in fsys that db lacks, and returns
// how many it applied and the version db is at. It does not call the
// provider's Close, which would close db.
func gooseUp(ctx context.Context, db *sql.DB, fsys fs.FS) (applied int, version int64, err error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return 0, 0, err
	}
	res, err := p.Up(ctx) // each migration in its own transaction
	if err != nil {
		return 0, 0, err
	}
	version, err = p.GetDBVersion(ctx)
	return len(res), version, err
}

// golangMigrateUp applies the golang-migrate migrations in fsys that db
// lacks, and returns how many it applied and the version db is at. It does
// not call the Migrate's Close, which would close db (through the sqlite3
// driver's Close).
func golangMigrateUp(db *sql.DB, fsys fs.FS) (applied int, version int64, err error) {
	drv, err := sqlite3.WithInstance(db, &sqlite3.Config{}) // pings db: the restore happens here
	if err != nil {
		return 0, 0, err
	}
	src, err := iofs.New(fsys, ".")
	if err != nil {
		return 0, 0, err
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite3", drv)
	if err != nil {
		return 0, 0, err
	}
	before, err := golangMigrateVersion(m)
	if err != nil {
		return 0, 0, err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, 0, err
	}
	after, err := golangMigrateVersion(m)
	if err != nil {
		return 0, 0, err
	}
	return countBetween(fsys, before, after), after, nil
}

// golangMigrateVersion returns m's version, 0 before the first migration.
// A dirty version (a migration that failed half-way) is an error.
func golangMigrateVersion(m *migrate.Migrate) (int64, error) {
	v, dirty, err := m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
		return 0, nil
	case err != nil:
		return 0, err
	case dirty:
		return 0, fmt.Errorf("schema version %d is dirty: fix the database, then force a version", v)
	}
	return int64(v), nil
}

// countBetween counts the up migrations in fsys whose version v satisfies
// from < v <= to.
func countBetween(fsys fs.FS, from, to int64) int {
	names, _ := fs.Glob(fsys, "*.up.sql")
	n := 0
	for _, name := range names {
		var v int64
		if _, err := fmt.Sscanf(name, "%d_", &v); err == nil && from < v && v <= to {
			n++
		}
	}
	return n
}
