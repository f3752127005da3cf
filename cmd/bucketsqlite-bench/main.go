package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec, os.Stdout, os.Stderr))
	}
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bucketsqlite-bench:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	size    int64 // the main database
	small   int64 // the idle-flush reference
	large   int64 // 0: no large rows
	runs    int
	inserts int // autocommit inserts per round of the insert scenario
	window  int // milliseconds of idle writer latency per run
	only    *regexp.Regexp
	dir     string
	cpuProf string
	quick   bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bucketsqlite-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                config
		size, small, large string
		only               string
	)
	fs.StringVar(&size, "size", "256MiB", "size of the main database (B, KiB, MiB, GiB)")
	fs.StringVar(&small, "small", "1MiB", "size of the small database idle flushes are compared with")
	fs.StringVar(&large, "large", "", "size of the large database for the extra idle-flush and the peak-RSS rows (e.g. 1GiB); empty: the peak-RSS rows use -size")
	fs.IntVar(&cfg.runs, "runs", 5, "runs of each scenario; the table shows medians")
	fs.IntVar(&cfg.inserts, "inserts", 2000, "autocommit inserts per round of the insert scenario")
	fs.BoolVar(&cfg.quick, "quick", false, "a smoke run: tiny databases, 1 run (overrides -size, -small, -large, -runs, -inserts)")
	fs.StringVar(&only, "only", "", "run only the scenarios whose names match this regexp (flush, idle, restore, insert, commit, rss, log, replica)")
	fs.StringVar(&cfg.dir, "dir", "", "work directory for the databases (kept, and seeded databases reused); default: a temp dir, removed")
	fs.StringVar(&cfg.cpuProf, "cpuprofile", "", "write a CPU profile of the scenarios (not of building the databases) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.size, err = parseSize(size); err != nil {
		return nil, fmt.Errorf("-size: %w", err)
	}
	if cfg.small, err = parseSize(small); err != nil {
		return nil, fmt.Errorf("-small: %w", err)
	}
	if large != "" {
		if cfg.large, err = parseSize(large); err != nil {
			return nil, fmt.Errorf("-large: %w", err)
		}
	}
	if only != "" {
		if cfg.only, err = regexp.Compile(only); err != nil {
			return nil, fmt.Errorf("-only: %w", err)
		}
	}
	cfg.window = 2000
	if cfg.quick {
		cfg.size, cfg.small, cfg.runs, cfg.inserts, cfg.window = 2<<20, 256<<10, 1, 100, 200
		if cfg.large > 0 {
			cfg.large = 4 << 20
		}
	}
	if cfg.runs < 1 {
		return nil, errors.New("-runs must be at least 1")
	}
	if cfg.inserts < 1 {
		return nil, errors.New("-inserts must be at least 1")
	}
	return &cfg, nil
}

// run is the program, apart from main so that tests can run it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.prepare(ctx); err != nil {
		return err
	}
	if cfg.cpuProf != "" {
		f, err := os.Create(cfg.cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rows, err := b.runAll(ctx)
	printTable(stdout, b.header(), rows)
	return err
}

// header describes the run and the machine.
func (b *bench) header() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "bucketsqlite-bench: %s database", b.sizeName(b.cfg.size))
	if b.cfg.large > 0 {
		fmt.Fprintf(&sb, " (large: %s)", b.sizeName(b.cfg.large))
	}
	fmt.Fprintf(&sb, ", %d run(s), versitygw on loopback\n", b.cfg.runs)
	fmt.Fprintf(&sb, "machine: %d CPUs (%s), %s %s/%s\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return sb.String()
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// parseSize parses a byte count with an optional B, KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size (B, KiB, MiB, GiB)", s)
	}
	return n * mult, nil
}

// formatSize prints a byte count in the largest binary unit that divides it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
