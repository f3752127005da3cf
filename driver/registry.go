package driver

import (
	"errors"
	"fmt"
	"sync"
)

// ErrInUse means the snapshot (bucket and key) or the working copy is
// already open: by another sql.DB in this process, or by another process.
// Share the first *sql.DB, or close it first.
var ErrInUse = errors.New("bucketsqlite: already in use")

var registry = struct {
	sync.Mutex
	open map[string]bool
}{open: map[string]bool{}}

func acquire(id, what string) error {
	registry.Lock()
	defer registry.Unlock()
	if registry.open[id] {
		return fmt.Errorf("%w: %s is already open in this process; share that *sql.DB or close it first", ErrInUse, what)
	}
	registry.open[id] = true
	return nil
}

func release(id string) {
	registry.Lock()
	defer registry.Unlock()
	delete(registry.open, id)
}
