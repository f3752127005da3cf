package fsutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// ErrLocked is TryLock's error when another holder has the lock.
var ErrLocked = errors.New("fsutil: file is locked by another holder")

// FileLock is an exclusive lock on a file, held until Unlock. Make one with
// Lock or TryLock.
type FileLock struct {
	f       *os.File
	release func() // undoes what tryLock did, before the file is closed
}

// TryLock takes an exclusive lock on the file at path, creating it (mode
// 0600) if needed, without waiting: when another holder has it, the error
// matches ErrLocked. See the package documentation for whom the lock
// excludes.
func TryLock(path string) (*FileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	release, err := tryLock(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &FileLock{f: f, release: release}, nil
}

// Lock is TryLock that waits while another holder has the lock, until ctx
// ends; then it returns ctx.Err(). It polls, so that a lock held by
// another process, which sends no wake-up, still lets ctx interrupt the
// wait.
func Lock(ctx context.Context, path string) (*FileLock, error) {
	wait := 100 * time.Microsecond
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// Unlock releases the lock and closes the lock file, which stays in place
// for the next holder. Calling it again does nothing.
func (l *FileLock) Unlock() error {
	if l.release == nil {
		return nil
	}
	l.release()
	l.release = nil
	return l.f.Close()
}

// CreateLocked creates the lock file at path and locks it, without its
// ever being visible unlocked: it is locked under a temporary name in the
// same directory, then renamed into place. Where ExcludesProcesses holds,
// a lock file that TryLock can take is then one its creator no longer
// holds (it released it, or died).
func CreateLocked(path string) (*FileLock, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	release, err := tryLock(f, path)
	if err == nil {
		if err = os.Rename(f.Name(), path); err != nil {
			release()
		}
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &FileLock{f: f, release: release}, nil
}
