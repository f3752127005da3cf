package fsutil_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/internal/childproc"
	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

func TestMain(m *testing.M) {
	childproc.Main(m, map[string]func([]string) int{"hold": holdMain})
}

// holdMain takes the lock at args[0], says "locked", and holds it until
// its stdin ends.
func holdMain(args []string) int {
	l, err := fsutil.TryLock(args[0])
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	l.Unlock()
	return 0
}

// wantHeld checks that the lock at path is held elsewhere: TryLock says
// ErrLocked, and Lock gives up when its context ends (the deadline only
// bounds the wait).
func wantHeld(t *testing.T, path string) {
	t.Helper()
	if l, err := fsutil.TryLock(path); !errors.Is(err, fsutil.ErrLocked) {
		if err == nil {
			l.Unlock()
		}
		t.Fatalf("TryLock of a held lock = %v; want ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if l, err := fsutil.Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			l.Unlock()
		}
		t.Fatalf("Lock of a held lock = %v; want context.DeadlineExceeded", err)
	}
}

func TestLockInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := fsutil.TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	wantHeld(t, path)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	l, err = fsutil.Lock(context.Background(), path)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	// A waiting Lock gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		l2, err := fsutil.Lock(context.Background(), path)
		if err == nil {
			err = l2.Unlock()
		}
		got <- err
	}()
	l.Unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiting Lock: %v", err)
	}
}

func TestLockMissingDirectory(t *testing.T) {
	_, err := fsutil.TryLock(filepath.Join(t.TempDir(), "missing", "x.lock"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("TryLock in a missing directory = %v; want not-exist", err)
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	switch runtime.GOOS {
	case "darwin", "dragonfly", "freebsd", "linux", "netbsd", "openbsd":
	default:
		t.Skip("the lock excludes other processes only where there is flock(2)")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	c := childproc.Start(t, childproc.Command("hold", path))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if line, err := c.Next(ctx); err != nil || line != "locked" {
		t.Fatalf("the child said %q, %v", line, err)
	}
	wantHeld(t, path)
	if err := c.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	l, err := fsutil.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after the other process let go: %v", err)
	}
	l.Unlock()

	// A killed holder's lock dies with it.
	c = childproc.Start(t, childproc.Command("hold", path))
	if line, err := c.Next(ctx); err != nil || line != "locked" {
		t.Fatalf("the child said %q, %v", line, err)
	}
	c.Kill()
	l, err = fsutil.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after the holder was killed: %v", err)
	}
	l.Unlock()
}

// A lock file made by CreateLocked is held from the moment it exists.
func TestCreateLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := fsutil.CreateLocked(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the lock file is not in place: %v", err)
	}
	if _, err := fsutil.TryLock(path); !errors.Is(err, fsutil.ErrLocked) {
		t.Fatalf("TryLock of a file CreateLocked holds: %v, want ErrLocked", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := fsutil.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	l2.Unlock()
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("left in the directory: %v", ents)
	}
}
