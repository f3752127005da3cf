//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package snapshot

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

const canLockTemp = true

// flock applies how to f's open file, retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// lockTemp takes an exclusive flock on f, a temp file just created, held
// until f is closed. It reports false if f's name no longer leads to f:
// a RemoveStaleTemp can remove the file between its creation and its
// lock, and the caller must then make another.
func lockTemp(f *os.File) (bool, error) {
	if err := flock(f, syscall.LOCK_EX); err != nil {
		return false, err
	}
	return sameFile(f, f.Name())
}

// sameFile reports whether path leads to the open file f.
func sameFile(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// removeIfStale removes the temp file at path, and its SQLite side files,
// if no process holds its lock, and reports whether it did.
func removeIfStale(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil // in use
	}
	if err != nil {
		return false, err
	}
	// Removed, or removed and made anew, since it was opened: not ours
	// to judge.
	if same, err := sameFile(f, path); !same || err != nil {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	for _, side := range sqliteSideFiles {
		os.Remove(path + side)
	}
	return true, nil
}
