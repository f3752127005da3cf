//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package fsutil

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock(2) on f without blocking. The lock
// belongs to f's open file description: another open of the same file,
// in this process or another, is excluded, and closing f (or the process
// dying) releases it.
func tryLock(f *os.File, _ string) (release func(), err error) {
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return func() { syscall.Flock(fd, syscall.LOCK_UN) }, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return nil, ErrLocked
		default:
			return nil, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// ExcludesProcesses reports that a FileLock excludes other processes, so
// that a lock nobody holds marks a file nobody uses.
const ExcludesProcesses = true
