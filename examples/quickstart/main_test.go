package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// visitLines returns the "visit N at TIME" lines of an output.
func visitLines(out string) []string {
	return regexp.MustCompile(`(?m)^  visit \d+ at \S+$`).FindAllString(out, -1)
}

// env returns a getenv that knows only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// The second run restores the first run's row and adds its own.
func TestRunTwiceContinues(t *testing.T) {
	dir := t.TempDir()
	getenv := env(map[string]string{"BUCKETSQLITE_DSN": "file://" + dir + "/quickstart.db"})
	ctx := context.Background()

	var first, second bytes.Buffer
	if err := run(ctx, getenv, &first); err != nil {
		t.Fatalf("first run: %v\n%s", err, &first)
	}
	if err := run(ctx, getenv, &second); err != nil {
		t.Fatalf("second run: %v\n%s", err, &second)
	}
	t.Logf("first run:\n%s\nsecond run:\n%s", &first, &second)

	v1, v2 := visitLines(first.String()), visitLines(second.String())
	if len(v1) != 1 || !strings.HasPrefix(v1[0], "  visit 1 at ") {
		t.Errorf("first run lists %q, want one visit", v1)
	}
	if len(v2) != 2 || len(v1) == 1 && v2[0] != v1[0] || !strings.HasPrefix(v2[1], "  visit 2 at ") {
		t.Errorf("second run lists %q, want the first run's %q and visit 2", v2, v1)
	}
	for _, want := range []string{"file://" + dir + "/quickstart.db (BUCKETSQLITE_DSN)", "restored: nothing", "flushed: 1 upload(s)"} {
		if !strings.Contains(first.String(), want) {
			t.Errorf("first run does not say %q", want)
		}
	}
	if !regexp.MustCompile(`restored: [1-9]\d* bytes`).MatchString(second.String()) {
		t.Errorf("second run does not report the restore")
	}

	b, err := bucket.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "quickstart.db"); err != nil {
		t.Errorf("snapshot in the bucket: %v", err)
	}
}

// With a persistent working copy that is current, nothing is restored,
// and the program says why rather than calling the database new.
func TestRunWithCurrentWorkingCopy(t *testing.T) {
	dir := t.TempDir()
	getenv := env(map[string]string{"BUCKETSQLITE_DSN": "file://" + dir + "/bucket/quickstart.db?local=" + dir + "/work/quickstart.db"})
	var first, second bytes.Buffer
	if err := run(context.Background(), getenv, &first); err != nil {
		t.Fatalf("first run: %v\n%s", err, &first)
	}
	if err := run(context.Background(), getenv, &second); err != nil {
		t.Fatalf("second run: %v\n%s", err, &second)
	}
	if !strings.Contains(second.String(), "restored: nothing to do, the local working copy is current") || len(visitLines(second.String())) != 2 {
		t.Errorf("second run:\n%s", &second)
	}
}

// A DSN with credentials is refused before anything is opened, and the
// secret is not repeated.
func TestRunRefusesCredentialsInDSN(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), env(map[string]string{"BUCKETSQLITE_DSN": "s3://AKID:s3cr3t@bucket/q.db"}), &out)
	if err == nil {
		t.Fatal("run accepted credentials in the DSN")
	}
	if strings.Contains(err.Error()+out.String(), "s3cr3t") {
		t.Errorf("the secret leaked: %v\n%s", err, &out)
	}
}

// What a newcomer does: build the example and run it twice in a fresh
// directory, with the default DSN. The data goes under ./data of the
// working directory, and the second run shows the first run's row.
func TestBinaryTwiceInFreshDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example: slow")
	}
	bin := filepath.Join(t.TempDir(), "quickstart")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BUCKETSQLITE_DSN=") {
			environ = append(environ, kv)
		}
	}
	runBin := func() string {
		t.Helper()
		cmd := exec.Command(bin)
		cmd.Dir, cmd.Env = work, environ
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", bin, err, out)
		}
		return string(out)
	}
	first, second := runBin(), runBin()
	t.Logf("first run:\n%s\nsecond run:\n%s", first, second)

	if !strings.Contains(first, "database: "+defaultDSN+" (default") {
		t.Errorf("first run does not name the default DSN")
	}
	v1, v2 := visitLines(first), visitLines(second)
	if len(v1) != 1 || len(v2) != 2 || v2[0] != v1[0] {
		t.Errorf("second run lists %q, want the first run's %q and one more", v2, v1)
	}
	if _, err := os.Stat(filepath.Join(work, "data", "bucket", "quickstart.db")); err != nil {
		t.Errorf("the snapshot is not under the working directory: %v", err)
	}
}

// When the program fails half-way, the deferred Close still runs: the
// error is the failure's, and the temporary working copy is gone.
func TestRunClosesOnError(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the working copies go
	dir := t.TempDir()
	dsn := "file://" + dir + "/quickstart.db"
	// A visits table the program cannot insert into.
	db, err := sql.Open("bucketsqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = run(context.Background(), env(map[string]string{"BUCKETSQLITE_DSN": dsn}), &out)
	if err == nil || !strings.Contains(err.Error(), "NOT NULL constraint failed") {
		t.Fatalf("run: %v; want the INSERT's NOT NULL error\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "flushed: 0 upload(s)") {
		t.Errorf("run did not close the database:\n%s", &out)
	}
	left, err := filepath.Glob(filepath.Join(tmp, "bucketsqlite-*"))
	if err != nil || len(left) != 0 {
		t.Errorf("working copies left in TMPDIR: %q %v", left, err)
	}
}
