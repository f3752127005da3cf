//go:build unix

package driver

import (
	"errors"
	"fmt"
	"os"
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
