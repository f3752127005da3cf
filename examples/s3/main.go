package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
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
		fmt.Fprintln(os.Stderr, "s3:", err)
		os.Exit(1)
	}
}

// run is the program, apart from main so that tests can run it. Its error
// includes the final flush's: the deferred Close sets it.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	cfg, verbose, err := parseFlags(args)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database: %s\n", cfg) // a Config holds no secrets

	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))
	// NewConnector takes what a DSN cannot: a logger, an *s3.Client of
	// your own (WithS3Client), an aws.Config (WithAWSConfig).
	c, err := driver.NewConnector(cfg, driver.WithLogger(logger))
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	// Close runs the final flush, on every return; its error becomes
	// run's. After the explicit flush in addRun it has nothing left to do,
	// so it sends no request.
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close (final flush): %w", cerr))
		}
	}()
	return addRun(ctx, db, stdout)
}

// parseFlags turns the command line into a Config.
func parseFlags(args []string) (cfg *driver.Config, verbose bool, err error) {
	fs := flag.NewFlagSet("s3", flag.ContinueOnError)
	dsn := fs.String("dsn", "", "the whole DSN, s3://BUCKET/KEY?...; replaces the flags below")
	bucketName := fs.String("bucket", "", "bucket name (required without -dsn)")
	key := fs.String("key", "examples/s3.db", "the database's key in the bucket")
	endpoint := fs.String("endpoint", os.Getenv("AWS_ENDPOINT_URL_S3"), "endpoint of an S3-compatible service; empty for AWS")
	region := fs.String("region", "", `region ("auto" for R2); empty: AWS_REGION or the profile's`)
	pathStyle := fs.Bool("path-style", false, "address the bucket as ENDPOINT/BUCKET (most self-hosted servers need it)")
	fs.BoolVar(&verbose, "v", false, "log the driver's restores and flushes")
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if *dsn != "" {
		cfg, err := driver.ParseDSN(*dsn)
		return cfg, verbose, err
	}
	if *bucketName == "" {
		return nil, false, errors.New("-bucket or -dsn is required")
	}
	cfg = driver.NewConfig()
	cfg.Bucket = bucket.URL{
		Scheme: "s3", Bucket: *bucketName,
		Endpoint: *endpoint, Region: *region, PathStyle: *pathStyle,
	}
	cfg.Key = *key
	return cfg, verbose, nil
}

// addRun records this run, lists the latest runs and flushes.
func addRun(ctx context.Context, db *sql.DB, stdout io.Writer) error {
	// The first query restores the snapshot: this is where a wrong
	// endpoint, region or credentials show up.
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS runs (
		id INTEGER PRIMARY KEY,
		at TEXT NOT NULL
	)`)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if _, err := db.ExecContext(ctx, "INSERT INTO runs(at) VALUES (?)", now); err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, at FROM runs ORDER BY id DESC LIMIT 10")
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
		fmt.Fprintf(stdout, "  run %d at %s\n", id, at)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	// Flush uploads now instead of waiting for the background flush (every
	// minute by default) or Close.
	res, err := driver.Flush(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flushed: uploaded=%t bytes=%d sha256=%s\n", res.Uploaded, res.BytesWritten, res.SnapshotHash)
	return nil
}
