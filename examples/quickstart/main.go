package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/buckethead/bucketsqlite/driver" // registers the "bucketsqlite" driver
)

// defaultDSN is a directory bucket relative to the current directory.
const defaultDSN = "file:data/bucket/quickstart.db"

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run is the program, apart from main so that tests can run it.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
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
	if err := visit(ctx, db, stdout); err != nil {
		db.Close()
		return err
	}
	// Close runs the final flush: when it returns nil, the bucket holds
	// every row written above. Always check its error.
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
