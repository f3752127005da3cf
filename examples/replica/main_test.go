package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary play the writer and the replicas, as the
// program's own binary does.
func TestMain(m *testing.M) {
	switch role := os.Getenv(roleEnv); {
	case role == "writer":
		err := writer(context.Background(), os.Getenv("BUCKETSQLITE_DSN"), os.Stdout)
		exit(err)
	case strings.HasPrefix(role, "replica "):
		exit(replica(context.Background(), os.Getenv("BUCKETSQLITE_DSN"), strings.TrimPrefix(role, "replica "), os.Stdout))
	}
	os.Exit(m.Run())
}

func exit(err error) {
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// Both replicas see every row the writer wrote, up to "done", each
// through its own process, and each is refused a write.
func TestWriterAndTwoReplicas(t *testing.T) {
	dsn := "file://" + t.TempDir() + "/replica.db"
	var out bytes.Buffer
	err := run(context.Background(), func(k string) string {
		if k == "BUCKETSQLITE_DSN" {
			return dsn
		}
		return ""
	}, &out)
	t.Logf("output:\n%s", &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"r1", "r2"} {
		for _, want := range []string{
			"replica " + name + `: sees 6 row(s), last "done"`,
			"replica " + name + ": a write is refused: attempt to write a readonly database",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the output has no %q", want)
			}
		}
	}
	if n := strings.Count(out.String(), "writer:     wrote"); n != rows+1 {
		t.Errorf("the writer wrote %d rows, want %d", n, rows+1)
	}
}
