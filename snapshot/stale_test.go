//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package snapshot_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// staleChildEnv makes the test binary, run as a child by
// TestRemoveStaleTemp, take a snapshot into the directory it names, print
// the temp file's path and wait for stdin to close (it is killed first).
const staleChildEnv = "BUCKETSQLITE_STALE_CHILD_DIR"

func TestStaleTempChild(t *testing.T) {
	dir := os.Getenv(staleChildEnv)
	if dir == "" {
		t.Skip("run by TestRemoveStaleTemp")
	}
	src := openDB(t, filepath.Join(dir, "src", "db.sqlite"), "WAL")
	fill(t, src, 100)
	f, err := snapshot.Take(ctx, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(f.Path() + "\n")
	bufio.NewReader(os.Stdin).ReadString('\n') // until killed
}

// A snapshot's temp file left by a process killed with SIGKILL is
// removed; one still in use by a live snapshot, or by a live process, is
// not; neither is anything not named like a temp file.
func TestRemoveStaleTemp(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o700); err != nil {
		t.Fatal(err)
	}
	child := func() (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStaleTempChild$")
		cmd.Env = append(os.Environ(), staleChildEnv+"="+dir)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close() })
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return cmd, strings.TrimSpace(line)
	}
	killed, killedPath := child()
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Wait()
	_, livePath := child()

	src := newDB(t, "WAL")
	fill(t, src, 10)
	live, err := snapshot.Take(ctx, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	unlocked := filepath.Join(dir, ".bucketsqlite-restore-123.db")
	other := filepath.Join(dir, "app.db")
	for _, p := range []string{unlocked, unlocked + "-journal", other, filepath.Join(dir, ".bucketsqlite-snapshot-9.db-wal")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	n, err := snapshot.RemoveStaleTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("RemoveStaleTemp removed %d files; want 2 (the killed child's and the unlocked one)", n)
	}
	for _, p := range []string{killedPath, unlocked, unlocked + "-journal", filepath.Join(dir, ".bucketsqlite-snapshot-9.db-wal")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stale %s survived: %v", filepath.Base(p), err)
		}
	}
	for _, p := range []string{livePath, live.Path(), other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, in use or not a temp file, was removed: %v", filepath.Base(p), err)
		}
	}
}
