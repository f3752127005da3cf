//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package bucket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The lock's tests wait on a held lock with a deadline: the deadline only
// bounds the wait, the tests do not depend on how long anything takes.

const lockHelperEnv = "BUCKETSQLITE_LOCK_HELPER_ROOT"

// TestDirLockHelper is not a test: run by TestDirLockAcrossProcesses in a
// child process, it holds the lock of a root until its stdin closes.
func TestDirLockHelper(t *testing.T) {
	root := os.Getenv(lockHelperEnv)
	if root == "" {
		t.Skip("helper process for TestDirLockAcrossProcesses")
	}
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	bufio.NewReader(os.Stdin).ReadString('\n')
	unlock()
}

func TestDirLockAcrossProcesses(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDirLockHelper$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+root)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	wantHeld(t, d)

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	unlock, err := d.lock(context.Background())
	if err != nil {
		t.Fatalf("lock after the other process released it: %v", err)
	}
	unlock()
}

func TestDirLockInProcess(t *testing.T) {
	root := t.TempDir()
	d1, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d1.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantHeld(t, d2)
	wantHeld(t, d1) // another goroutine of the same Dir
	unlock()
	unlock, err = d2.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

// wantHeld checks that d's lock is held elsewhere: taking it, or writing,
// fails once ctx expires, and a failed write leaves no temporary file.
func wantHeld(t *testing.T, d *Dir) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if unlock, err := d.lock(ctx); err == nil {
		unlock()
		t.Fatal("took a lock that is held elsewhere")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock: %v; want context.DeadlineExceeded", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := d.Upload(ctx, "k/obj", bytes.NewReader([]byte("x")), 1, WriteOptions{IfNoneMatch: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Upload while the lock is held: %v; want context.DeadlineExceeded", err)
	}
	if _, err := d.Stat(context.Background(), "k/obj"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an Upload that could not take the lock stored an object: %v", err)
	}
	filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), ".bucketsqlite-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}
