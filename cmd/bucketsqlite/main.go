package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
)

// Exit codes.
const (
	exitOK      = 0 // the command did what it was asked
	exitFailure = 1 // it could not: an error, a problem verify found, a refusal
	exitUsage   = 2 // bad arguments or a DSN that cannot be used
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is an error in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// command is a subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"restore", "DSN FILE [--at TIME | --seq N] [--force]", "write the database (as of now, TIME or sequence N) to FILE", cmdRestore},
	{"ls", "DSN [--json]", "list the base, KEY.prev, the archived bases and the deltas", cmdLs},
	{"verify", "DSN [--at TIME | --seq N]", "download and check everything a restore would use, writing no file", cmdVerify},
	{"push", "FILE DSN [--force]", "make an SQLite file the database in the bucket (a new base)", cmdPush},
	{"compact", "DSN", "fold the deltas into a new base, as the writer does", cmdCompact},
	{"prune", "DSN [--retention D] [--dry-run]", "delete the bases and deltas no restore within the retention needs", cmdPrune},
}

const usageText = `bucketsqlite operates a SQLite database kept in a bucket by the bucketsqlite driver.

Usage:
  bucketsqlite COMMAND ARGS... [FLAGS]

Commands:
%s
DSNs are the driver's: s3://BUCKET/KEY?region=...&endpoint=..., file:///DIR/KEY
(mem:// buckets live inside one process and are refused). S3 credentials come
from the standard AWS environment variables, files and profiles.

TIME is RFC 3339 (2026-11-29T17:05:00Z) or a negative duration from now (-90m).
Transfers over 4 MiB show a progress bar on a terminal; -q silences it.
"bucketsqlite COMMAND -h" shows a command's flags.

Exit codes: 0 success; 1 failure (an error, a problem verify found, a
refusal such as an existing FILE without --force); 2 bad usage or DSN.
`

func usage() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n           %s\n", c.name, c.args, c.summary)
	}
	return fmt.Sprintf(usageText, b.String())
}

// env is what a command writes to and how.
type env struct {
	stdout, stderr io.Writer
	quiet          bool
	usage, summary string // the command's arguments and what it does, for -h
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		e := &env{stdout: stdout, stderr: stderr, usage: c.args, summary: c.summary}
		err := c.run(ctx, e, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "bucketsqlite %s: %v\nusage: bucketsqlite %s %s\n", c.name, err, c.name, c.args)
			return exitUsage
		}
		fmt.Fprintf(stderr, "bucketsqlite %s: %v\n", c.name, err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "bucketsqlite: unknown command %q\n\n%s", args[0], usage())
	return exitUsage
}

// flags is a command's flag set, with the flags every command has.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: bucketsqlite %s %s\n\n%s.\n\nFlags:\n", name, e.usage, e.summary)
		fs.PrintDefaults()
	}
	fs.BoolVar(&e.quiet, "q", false, "quiet: no progress bar")
	return fs
}

// parse parses args, flags and positional arguments mixed in any order,
// and checks that there are want positional arguments.
func parse(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		return nil, usagef("want %d arguments, got %d", want, len(pos))
	}
	return pos, nil
}

// target is a database named by a DSN.
type target struct {
	cfg *driver.Config
	b   bucket.Bucket
	key string
}

// name is how messages name it: the bucket and the key, without the S3
// settings (or any credential).
func (t *target) name() string {
	u := bucket.URL{Scheme: t.cfg.Bucket.Scheme, Bucket: t.cfg.Bucket.Bucket, Dir: t.cfg.Bucket.Dir}
	return strings.TrimSuffix(u.String(), "/") + "/" + t.key
}

// open parses dsn as the driver does and opens its bucket, with progress
// bars unless e is quiet or stderr is no terminal.
func (e *env) open(ctx context.Context, dsn string) (*target, error) {
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if cfg.Bucket.Scheme == "mem" {
		return nil, usagef("%s: a mem:// bucket lives inside one process and is gone when it exits: "+
			"name a bucket another process can read (s3:// or file://)", cfg.FormatDSN())
	}
	b, err := cfg.Bucket.Open(ctx)
	if err != nil {
		return nil, err
	}
	if !e.quiet {
		if w := terminal(e.stderr); w != nil {
			b = &progressBucket{Bucket: b, w: w}
		}
	}
	return &target{cfg: cfg, b: b, key: cfg.Key}, nil
}

// pointFlags adds --at and --seq to fs.
type pointFlags struct {
	at  string
	seq uint64
}

func (p *pointFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&p.at, "at", "", "the state as of the last flush at or before TIME (RFC 3339, or a negative duration from now such as -2h)")
	fs.Uint64Var(&p.seq, "seq", 0, "the state as of sequence N")
}

// parse returns the point in time, or the sequence, asked for.
func (p *pointFlags) parse(now time.Time) (time.Time, uint64, error) {
	if p.at != "" && p.seq != 0 {
		return time.Time{}, 0, usagef("--at and --seq exclude each other")
	}
	if p.at == "" {
		return time.Time{}, p.seq, nil
	}
	t, err := parseTime(p.at, now)
	return t, 0, err
}

// parseTime reads an RFC 3339 time or a negative duration from now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, usagef("--at %q: not a negative duration such as -90m: %v", s, err)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("--at %q: not an RFC 3339 time such as 2026-11-29T17:05:00Z", s)
	}
	return t, nil
}

// size formats n bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// stamp formats t for people (and tests that parse it back).
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
