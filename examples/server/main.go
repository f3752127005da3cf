package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/buckethead/bucketsqlite/driver"
)

// shutdownTimeout bounds the wait for requests in flight.
const shutdownTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, stop listening, so that a second one ends
	// the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down: the HTTP server
// first, the database (and its final flush) last. It is apart from main
// so that tests can run it.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	dsn := fs.String("dsn", "file:data/bucket/todos.db", "bucketsqlite DSN; the default is relative to the current directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))

	cfg, err := driver.ParseDSN(*dsn)
	if err != nil {
		return err
	}
	c, err := driver.NewConnector(cfg, driver.WithLogger(log))
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	// Restore now, so that a wrong bucket fails at startup rather than on
	// the first request.
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return errors.Join(err, db.Close())
	}
	handler, err := newHandler(db)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "url", "http://"+ln.Addr().String(), "database", cfg)

	select {
	case err := <-served:
		return errors.Join(err, db.Close())
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// db.Close does not wait for queries in progress, so stop the HTTP
	// server first: Shutdown returns once every handler has returned.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running; closing them", "err", err)
		srv.Close()
	}
	if err := db.Close(); err != nil {
		log.Error("final flush failed", "err", err)
		return fmt.Errorf("final flush: %w", err)
	}
	st, err := driver.GetStats(db)
	if err != nil {
		return err
	}
	log.Info("final flush done", "uploads", st.Uploads, "bytes_uploaded", st.BytesUploaded)
	return nil
}
