package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/buckethead/bucketsqlite/driver" // registers the "bucketsqlite" driver
)

// defaultDSN is a directory bucket relative to the current directory.
const defaultDSN = "file:data/bucket/quickstart.db"

func main() {
	// Ctrl-C or SIGTERM cancels ctx: the query running fails, run returns,
	// and its deferred Close still runs the final flush. (Without this, a
	// signal ends the process at once, and the writes since the last
	// flush never reach the bucket.)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends the process at once
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run is the program, apart from main so that tests can run it. Its error
// includes the final flush's: the deferred Close sets it.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) (err error) {
	dsn, from := getenv("BUCKETSQLITE_DSN"), "BUCKETSQLITE_DSN"
	if dsn == "" {
		dsn, from = defaultDSN, "default; set BUCKETSQLITE_DSN to change"
	}
	// A parsed Config prints without secrets (a DSN never holds any).
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database: %s (%s)\n", cfg, from)

	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		return err
	}
	// Close runs the final flush: when it returns nil, the bucket holds
	// every row visit wrote. Deferred, it runs on every return; its
	// error becomes run's. A program that exits without Close loses the
	// writes since the last flush and leaves its working copy in $TMPDIR.
	defer func() { err = errors.Join(err, closeDB(db, stdout)) }()
	return visit(ctx, db, stdout)
}

// closeDB closes db, which runs the final flush, and says what the
// flushes uploaded.
func closeDB(db *sql.DB, stdout io.Writer) error {
	if err := db.Close(); err != nil {
		return fmt.Errorf("close (final flush): %w", err)
	}
	st, err := driver.GetStats(db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flushed: %d upload(s), %d bytes, %d skipped\n", st.Uploads, st.BytesUploaded, st.Skips)
	return nil
}

// visit says what was restored, records this visit and prints every visit
// so far.
func visit(ctx context.Context, db *sql.DB, stdout io.Writer) error {
	// The first query restores the snapshot from the bucket, if there is one.
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS visits (
		id INTEGER PRIMARY KEY,
		at TEXT NOT NULL
	)`)
	if err != nil {
		return err
	}
	st, err := driver.GetStats(db)
	if err != nil {
		return err
	}
	switch {
	case st.Restored:
		fmt.Fprintf(stdout, "restored: %d bytes from the bucket\n", st.RestoredBytes)
	case st.ETag != "": // a persistent working copy (local=PATH) in step with the bucket
		fmt.Fprintln(stdout, "restored: nothing to do, the local working copy is current")
	default:
		fmt.Fprintln(stdout, "restored: nothing, this is a new database")
	}

	now := time.Now().UTC().Format(time.RFC3339)
	if _, err := db.ExecContext(ctx, "INSERT INTO visits(at) VALUES (?)", now); err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, at FROM visits ORDER BY id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var at string
		if err := rows.Scan(&id, &at); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  visit %d at %s\n", id, at)
	}
	return rows.Err()
}
