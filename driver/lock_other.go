//go:build !unix

package driver

import "os"

// lockLocal opens the lock file; other processes are not excluded on this
// platform.
func lockLocal(local string) (*os.File, error) {
	return os.OpenFile(lockPath(local), os.O_RDWR|os.O_CREATE, 0o600)
}

// locksExclude is false: a lock file says nothing about its users here.
const locksExclude = false

// lockFresh is lockLocal.
func lockFresh(local string) (*os.File, error) { return lockLocal(local) }
