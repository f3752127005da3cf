//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package snapshot

import "os"

const canLockTemp = false

// lockTemp does nothing where there is no flock: RemoveStaleTemp removes
// nothing there.
func lockTemp(*os.File) (bool, error) { return true, nil }

// removeIfStale is never called where there is no flock.
func removeIfStale(string) (bool, error) { return false, nil }
