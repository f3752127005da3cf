package driver

import (
	"errors"
	"fmt"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

// lockLocal takes the exclusive lock beside a persistent working copy, so
// that two processes (or two sql.DBs) never share one.
func lockLocal(local string) (*fsutil.FileLock, error) {
	l, err := fsutil.TryLock(lockPath(local))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("%w: working copy %s is in use by another database (another process, or another key in this one)", ErrInUse, local)
	}
	return l, err
}

// lockFresh locks a new working copy's lock file before it becomes
// visible, so that no one can mistake it for a stale one in between.
func lockFresh(local string) (*fsutil.FileLock, error) {
	return fsutil.CreateLocked(lockPath(local))
}
