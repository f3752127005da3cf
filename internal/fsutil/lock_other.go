//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package fsutil

import (
	"os"
	"path/filepath"
	"sync"
)

// held holds the paths locked in this process, for systems without
// flock(2). There the lock excludes holders within one process only: two
// processes can both hold it.
var held = struct {
	sync.Mutex
	m map[string]bool
}{m: make(map[string]bool)}

// tryLock takes path's in-process lock without blocking.
func tryLock(_ *os.File, path string) (release func(), err error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	held.Lock()
	defer held.Unlock()
	if held.m[path] {
		return nil, ErrLocked
	}
	held.m[path] = true
	return func() {
		held.Lock()
		delete(held.m, path)
		held.Unlock()
	}, nil
}

// ExcludesProcesses is false: here a FileLock excludes other holders in
// this process only, and says nothing about other processes.
const ExcludesProcesses = false
