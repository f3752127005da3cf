//go:build unix

package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockLocal takes an exclusive advisory lock beside a persistent working
// copy, so that two processes (or two sql.DBs) never share one.
func lockLocal(local string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(local), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: working copy %s is in use by another process", ErrInUse, local)
		}
		return nil, err
	}
	return f, nil
}

// locksExclude reports that lockLocal excludes other processes, so that a
// lock file nobody holds marks a working copy nobody uses.
const locksExclude = true

// lockFresh locks a new working copy's lock file before it becomes
// visible: it is locked under a temporary name, then renamed into place,
// so that no one can mistake it for a stale one in between.
func lockFresh(local string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(local), ".lock-*")
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := os.Rename(f.Name(), lockPath(local)); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}
