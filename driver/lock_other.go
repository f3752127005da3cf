//go:build !unix

package driver

import "os"

// lockLocal opens the lock file; other processes are not excluded on this
// platform.
func lockLocal(local string) (*os.File, error) {
	return os.OpenFile(lockPath(local), os.O_RDWR|os.O_CREATE, 0o600)
}
