package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	_ "github.com/buckethead/bucketsqlite/driver" // registers the "bucketsqlite" driver
)

// visit is a row of the visits table; sqlx maps columns by the db tags.
type visit struct {
	ID   int64  `db:"id"`
	At   string `db:"at"`
	Note string `db:"note"`
}

const schema = `
CREATE TABLE IF NOT EXISTS visits (
	id   INTEGER PRIMARY KEY,
	at   TEXT NOT NULL,
	note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tallies (
	note TEXT PRIMARY KEY,
	n    INTEGER NOT NULL
);`

func main() {
	// Ctrl-C or SIGTERM cancels ctx: the query running fails, run returns,
	// and its deferred Close still runs the final flush. (Without this, a
	// signal ends the process at once, and the writes since the last
	// flush never reach the bucket.)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends the process at once
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sqlx:", err)
		os.Exit(1)
	}
}

// run is the program, apart from main so that tests can run it. Its error
// includes the final flush's: the deferred Close sets it.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("sqlx", flag.ContinueOnError)
	dsn := fs.String("dsn", "file:data/bucket/sqlx.db", "bucketsqlite DSN; the default is relative to the current directory")
	note := fs.String("note", "hello", "the note recorded with this visit")
	if err := fs.Parse(args); err != nil {
		return err
	}

	db, err := sqlx.Open("bucketsqlite", *dsn)
	if err != nil {
		return err
	}
	// Close runs the final flush, on every return; its error becomes
	// run's.
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close (final flush): %w", cerr))
		}
	}()
	return record(ctx, db, *note, stdout)
}

// record adds a visit in a transaction and lists the visits with its note.
func record(ctx context.Context, db *sqlx.DB, note string, stdout io.Writer) error {
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return err
	}

	// The visit and its tally change together or not at all.
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	v := visit{At: time.Now().UTC().Format(time.RFC3339), Note: note}
	res, err := tx.NamedExecContext(ctx, `INSERT INTO visits(at, note) VALUES (:at, :note)`, v)
	if err != nil {
		return err
	}
	if v.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	_, err = tx.NamedExecContext(ctx, `INSERT INTO tallies(note, n) VALUES (:note, 1)
		ON CONFLICT(note) DO UPDATE SET n = n + 1`, v)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}

	var total int
	if err := db.GetContext(ctx, &total, "SELECT count(*) FROM visits"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "visit %d recorded (%d in total)\n", v.ID, total)

	// A named query takes its parameters from a struct (or a map) and
	// scans each row into a struct.
	rows, err := db.NamedQueryContext(ctx, `SELECT id, at, note FROM visits WHERE note = :note ORDER BY id`, v)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintf(stdout, "visits with note %q:\n", note)
	for rows.Next() {
		var w visit
		if err := rows.StructScan(&w); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  #%d at %s\n", w.ID, w.At)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	var tallies []struct {
		Note string `db:"note"`
		N    int    `db:"n"`
	}
	if err := db.SelectContext(ctx, &tallies, "SELECT note, n FROM tallies ORDER BY note"); err != nil {
		return err
	}
	for _, t := range tallies {
		fmt.Fprintf(stdout, "tally %q: %d\n", t.Note, t.N)
	}
	return nil
}
