package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// Three runs on one database, in a directory bucket and in a memory
// bucket: each run sees the visits of the runs before it, the named query
// finds the visits with its note, and the transaction kept the tallies in
// step.
func TestRunsContinue(t *testing.T) {
	for _, tc := range []struct{ name, dsn string }{
		{"dir", "file://" + t.TempDir() + "/sqlx.db"},
		{"mem", "mem://examples-sqlx-test/sqlx.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var outs []string
			for _, note := range []string{"hello", "world", "hello"} {
				var out bytes.Buffer
				if err := run(context.Background(), []string{"-dsn", tc.dsn, "-note", note}, &out); err != nil {
					t.Fatalf("run -note %s: %v\n%s", note, err, &out)
				}
				outs = append(outs, out.String())
			}
			t.Logf("last run:\n%s", outs[2])
			listed := regexp.MustCompile(`(?m)^  #\d+ at \S+$`).FindAllString(outs[2], -1)
			first := regexp.MustCompile(`(?m)^  #1 at \S+$`).FindString(outs[0])
			if len(listed) != 2 || listed[0] != first || !strings.HasPrefix(listed[1], "  #3 at ") {
				t.Errorf("third run lists %q, want the first run's %q and #3", listed, first)
			}
			for _, want := range []string{"visit 3 recorded (3 in total)", `tally "hello": 2`, `tally "world": 1`} {
				if !strings.Contains(outs[2], want) {
					t.Errorf("third run does not say %q", want)
				}
			}
		})
	}
}

func TestRunRejectsBadDSN(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-dsn", "mem://x/sqlx.db?flush_intervall=1s"}, &out); err == nil {
		t.Fatal("run accepted a misspelt parameter")
	}
}
