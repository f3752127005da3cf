package bucket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/internal/childproc"
)

// The lock's tests wait on a held lock with a deadline: the deadline only
// bounds the wait, the tests do not depend on how long anything takes.

func TestMain(m *testing.M) {
	childproc.Main(m, map[string]func([]string) int{"hold-dir-lock": holdDirLock})
}

// holdDirLock, run by TestDirLockAcrossProcesses in a child process, holds
// the lock of the root args[0] until its stdin closes.
func holdDirLock(args []string) int {
	d, err := NewDir(args[0])
	if err != nil {
		fmt.Println(err)
		return 2
	}
	unlock, err := d.lock(context.Background())
	if err != nil {
		fmt.Println(err)
		return 2
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	unlock()
	return 0
}

func TestDirLockAcrossProcesses(t *testing.T) {
	switch runtime.GOOS {
	case "darwin", "dragonfly", "freebsd", "linux", "netbsd", "openbsd":
	default:
		t.Skip("the root's lock excludes other processes only where there is flock(2)")
	}
	root := t.TempDir()
	c := childproc.Start(t, childproc.Command("hold-dir-lock", root))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if line, err := c.Next(ctx); err != nil || line != "locked" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	wantHeld(t, d)

	if err := c.Wait(); err != nil {
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
