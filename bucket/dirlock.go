package bucket

import (
	"context"
	"path/filepath"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
)

// lock takes the root's lock, the lock file in the root, waiting until ctx
// is done. It excludes every other writer to the root: another goroutine,
// another Dir on the same root, and, where the system has flock(2),
// another process (see fsutil.Lock). Elsewhere two processes writing to
// the same root can race on conditional writes.
func (d *Dir) lock(ctx context.Context) (unlock func(), err error) {
	l, err := fsutil.Lock(ctx, filepath.Join(d.root, lockName))
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}
