package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/buckethead/bucketsqlite/driver" // registers the "bucketsqlite" driver
)

// defaultDSN is a directory bucket relative to the current directory.
const defaultDSN = "file:data/bucket/replica.db"

// roleEnv selects, in a process the program started, the role it plays.
const roleEnv = "BUCKETSQLITE_EXAMPLE_ROLE"

// Timing of the demonstration: the writer adds rows rows, one every
// tick; the replicas refresh every refresh (the default is 1s) and query
// every look.
const (
	rows    = 5
	tick    = 700 * time.Millisecond
	refresh = "250ms"
	look    = 50 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch role := os.Getenv(roleEnv); {
	case role == "writer":
		err = writer(ctx, os.Getenv("BUCKETSQLITE_DSN"), os.Stdout)
	case strings.HasPrefix(role, "replica "):
		err = replica(ctx, os.Getenv("BUCKETSQLITE_DSN"), strings.TrimPrefix(role, "replica "), os.Stdout)
	default:
		err = run(ctx, os.Getenv, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica example:", err)
		os.Exit(1)
	}
}

// run starts the writer, waits for its first flush (a replica needs a
// database in the bucket to restore), then starts two replicas, and
// copies the lines of all three to stdout until they end.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	dsn := getenv("BUCKETSQLITE_DSN")
	if dsn == "" {
		dsn = defaultDSN
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var mu sync.Mutex // one line at a time on stdout
	start := func(role string, ready chan<- struct{}) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, self)
		cmd.Env = append(os.Environ(), roleEnv+"="+role, "BUCKETSQLITE_DSN="+dsn)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if line == "READY" {
					close(ready)
					continue
				}
				mu.Lock()
				fmt.Fprintln(stdout, line)
				mu.Unlock()
			}
		}()
		return cmd, nil
	}
	ready := make(chan struct{})
	w, err := start("writer", ready)
	if err != nil {
		return err
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return errors.Join(ctx.Err(), w.Wait())
	}
	var errs []error
	var cmds []*exec.Cmd
	for _, name := range []string{"r1", "r2"} {
		c, err := start("replica "+name, make(chan struct{}))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cmds = append(cmds, c)
	}
	errs = append(errs, w.Wait())
	for _, c := range cmds {
		errs = append(errs, c.Wait())
	}
	return errors.Join(errs...)
}

// writer is the writing process: sync=log, so that each flush uploads
// only the pages that changed. It adds rows rows, flushing after each,
// then a last row "done", and closes.
func writer(ctx context.Context, base string, stdout io.Writer) (err error) {
	db, err := sql.Open("bucketsqlite", withParams(base, "sync=log&flush_interval=0"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM notes"); err != nil {
		return err
	}
	if _, err := driver.Flush(ctx, db); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "READY")
	for i := 1; i <= rows+1; i++ {
		time.Sleep(tick)
		body := fmt.Sprint("note ", i)
		if i > rows {
			body = "done"
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO notes(body) VALUES (?)", body); err != nil {
			return err
		}
		res, err := driver.Flush(ctx, db)
		if err != nil {
			return err
		}
		st, _ := driver.GetStats(db)
		fmt.Fprintf(stdout, "writer:     wrote %-7q  flushed delta %d (%d bytes)\n", body, st.Seq, res.BytesWritten)
	}
	return nil
}

// replica is a replica process: replica=true, refreshing every refresh.
// It prints what its queries see whenever that changes, until it sees
// the writer's "done".
func replica(ctx context.Context, base, name string, stdout io.Writer) (err error) {
	db, err := sql.Open("bucketsqlite", withParams(base, "replica=true&refresh_interval="+refresh))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	seen := -1
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var n int
		var last sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT count(*), (SELECT body FROM notes ORDER BY id DESC LIMIT 1) FROM notes").Scan(&n, &last); err != nil {
			return err
		}
		if n != seen {
			seen = n
			st, _ := driver.GetStats(db)
			lag := "-"
			if !st.WriterFlush.IsZero() {
				lag = st.Lag.Round(time.Millisecond).String()
			}
			fmt.Fprintf(stdout, "replica %s: sees %d row(s), last %-7q at seq %d, flushed by the writer %s ago; %d bytes downloaded\n",
				name, n, last.String, st.Seq, lag, st.BytesDownloaded)
		}
		if last.String == "done" {
			if _, err := db.ExecContext(ctx, "DELETE FROM notes"); err != nil {
				fmt.Fprintf(stdout, "replica %s: a write is refused: %v\n", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(look):
		}
	}
	return errors.New("replica " + name + ": the writer's last row never arrived")
}

// withParams adds params to a DSN's query.
func withParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}
