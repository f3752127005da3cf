//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package s3test

import "context"

// lockFile is a no-op where flock is unavailable: parallel installs may
// race, which go install survives.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	return func() {}, nil
}
