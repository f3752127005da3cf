//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package bucket

import (
	"context"
	"sync"
)

// rootLocks holds one lock per root for systems without flock(2). There,
// Dir's writers exclude each other only within one process: two processes
// writing to the same root can race on conditional writes.
var rootLocks = struct {
	sync.Mutex
	m map[string]chan struct{}
}{m: make(map[string]chan struct{})}

// lock takes the root's in-process lock.
func (d *Dir) lock(ctx context.Context) (unlock func(), err error) {
	rootLocks.Lock()
	ch, ok := rootLocks.m[d.root]
	if !ok {
		ch = make(chan struct{}, 1)
		rootLocks.m[d.root] = ch
	}
	rootLocks.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
