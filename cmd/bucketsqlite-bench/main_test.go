package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// TestMain lets the test binary serve as the peak-RSS child, as the
// command's own binary does.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs the whole benchmark on tiny databases, once, and checks
// that the table has every scenario's rows. It asserts nothing about the
// timings: they belong in the output, not in pass or fail.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts versitygw and builds databases: skipped with -short")
	}
	if _, err := s3test.Binary(t.Context()); err != nil {
		s3test.Start(t) // skips, or fails in CI, with the reason
	}
	var out, log bytes.Buffer
	err := run(context.Background(), []string{"-quick", "-large", "1GiB", "-dir", t.TempDir()}, &out, &log)
	t.Logf("table:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	table := out.String()
	for _, want := range []string{
		"scenario", "median", "baseline", "ratio", "target", "result",
		"flush 2 MiB, changed ", "flush 2 MiB, changed, keep_previous ",
		"idle flush 256 KiB ", "idle flush 2 MiB ", "idle flush 4 MiB ",
		"restore 2 MiB, RestoreFile ", "restore 2 MiB, driver first Ping ",
		"inserts/s, bucketsqlite ",
		"commit p99 during a 2 MiB flush (", "commit p99 during a 2 MiB flush, local= (",
		"peak RSS raise, flush 4 MiB ", "peak RSS raise, restore 4 MiB ",
		"log flush 2 MiB, one-row UPDATE ", "restore 2 MiB, base + ", "commit p99, log flush every 1s (",
		"log flush pages / distinct pages changed (",
		"replica download, one-row UPDATE ", "replica refresh, one-row UPDATE ", "visible on replica after flush, median ",
		"visible on replica after flush, p99 ", "replica query p99, deltas applied ", "replica requests per refresh_interval, idle writer ",
		"machine: ",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table has no %q", want)
		}
	}
	for line := range strings.Lines(table) {
		if strings.Contains(line, "ERROR") {
			t.Errorf("a scenario failed: %s", line)
		}
	}
	if n := strings.Count(table, "PASS") + strings.Count(table, "MISS"); n != 24 {
		t.Errorf("%d rows with a verdict, want 24", n)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1GiB": 1 << 30, "256MiB": 256 << 20, "512 KiB": 512 << 10, "100B": 100, "4096": 4096,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1TB", "MiB", "1.5GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}
