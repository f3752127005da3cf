package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Two runs on a directory bucket: the second restores the first's author
// and book from the bucket and adds its own; a third deletes a book.
func TestRunsContinue(t *testing.T) {
	dir := t.TempDir()
	dsn := "file://" + dir + "/gorm.db?_foreign_keys=1"
	runOK := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"-dsn", dsn}, args...), &out); err != nil {
			t.Fatalf("run %q: %v\n%s", args, err, &out)
		}
		return out.String()
	}

	first := runOK("-title", "The Hobbit")
	second := runOK("-title", "The Silmarillion")
	t.Logf("first run:\n%s\nsecond run:\n%s", first, second)
	for _, want := range []string{"restored: nothing to restore", `added: book 1, "The Hobbit"`,
		"author Tolkien (1 run(s)):\n  book 1: The Hobbit\nflushed: uploaded=true"} {
		if !strings.Contains(first, want) {
			t.Errorf("first run does not say %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^restored: [1-9]\d* bytes from the bucket$`).MatchString(second) {
		t.Errorf("second run does not report a restore")
	}
	if want := "author Tolkien (2 run(s)):\n  book 1: The Hobbit\n  book 2: The Silmarillion\n"; !strings.Contains(second, want) {
		t.Errorf("second run does not list %q", want)
	}

	third := runOK("-author", "Le Guin", "-title", "The Dispossessed", "-delete", "The Hobbit")
	if !strings.Contains(third, `deleted: 0 book(s) titled "The Hobbit"`) {
		t.Errorf("third run deleted another author's book:\n%s", third)
	}
	fourth := runOK("-delete", "The Hobbit")
	want := "author Le Guin (1 run(s)):\n  book 3: The Dispossessed\nauthor Tolkien (3 run(s)):\n  book 2: The Silmarillion\nflushed"
	if !strings.Contains(fourth, `deleted: 1 book(s) titled "The Hobbit"`) || !strings.Contains(fourth, want) {
		t.Errorf("fourth run:\n%s\nwant it to list\n%s", fourth, want)
	}

	b, err := bucket.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(context.Background(), "gorm.db"); err != nil {
		t.Errorf("snapshot in the bucket: %v", err)
	}
}

// A restore error comes out of gorm.Open, and so out of run, as itself.
func TestRunRestoreErrorFromOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := bucket.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	junk := "SQLite format 3\x00 but not really: " + strings.Repeat("x", 5000)
	if _, err := b.Upload(context.Background(), "gorm.db", strings.NewReader(junk), int64(len(junk)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(context.Background(), []string{"-dsn", "file://" + dir + "/gorm.db"}, &out)
	if !errors.Is(err, snapshot.ErrCorrupt) || !strings.HasPrefix(err.Error(), "open (restore): ") {
		t.Fatalf("run on a corrupt snapshot: %v; want open (restore): ... ErrCorrupt", err)
	}
}

func TestRunRejectsBadDSN(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-dsn", "mem://x/gorm.db?_foreign_keyz=1"}, &out); err == nil {
		t.Fatal("run accepted a misspelt parameter")
	}
}
