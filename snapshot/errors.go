package snapshot

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSnapshot is the base of every snapshot failure: errors.Is(err,
// ErrSnapshot) holds for ErrCorrupt and ErrConflict too.
var ErrSnapshot = errors.New("snapshot error")

// kind is a sentinel that also matches ErrSnapshot.
type kind struct{ msg string }

func (k *kind) Error() string { return k.msg }
func (k *kind) Unwrap() error { return ErrSnapshot }

var (
	// ErrCorrupt means a downloaded snapshot is not a sound SQLite
	// database: it is not SQLite at all, its backup failed, its integrity
	// check failed, or its bytes do not match the SHA-256 recorded in the
	// object's metadata. Nothing was restored. From Take or Flush, it means
	// the local database failed PRAGMA quick_check: nothing was uploaded.
	ErrCorrupt error = &kind{"corrupt snapshot"}

	// ErrConflict means the object at the key is no longer the one the
	// caller last saw (another writer flushed, or an object exists where a
	// first flush expected none). Nothing was overwritten.
	ErrConflict error = &kind{"snapshot changed by another writer"}

	// ErrForeignObject means an object that this package did not write
	// for the snapshot's key holds a key it would write beside the
	// snapshot (KEY.prev, KEY.probe). Nothing was overwritten: move or
	// delete the object, then try again.
	ErrForeignObject error = &kind{"foreign object in the way"}
)

// Error is a snapshot operation's failure. It names the operation and the
// key, and matches both its Kind (ErrCorrupt, ErrConflict, ...) and its
// cause with errors.Is / errors.As: a flush whose upload failed with a
// bucket error still matches bucket.ErrNotFound, say.
type Error struct {
	// Op is "restore", "flush", "probe", or one of the history's
	// operations: "history", "verify", "push", "compact", "archive",
	// "prune".
	Op string
	// Key is the snapshot's key in the bucket.
	Key string
	// Kind is ErrCorrupt, ErrConflict, ErrForeignObject, or nil.
	Kind error
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Kind != nil {
		return fmt.Sprintf("snapshot: %s %q: %v: %v", e.Op, e.Key, e.Kind, e.Err)
	}
	return fmt.Sprintf("snapshot: %s %q: %v", e.Op, e.Key, e.Err)
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Kind != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{ErrSnapshot, e.Err}
}

func corrupt(op, key string, format string, args ...any) error {
	return &Error{Op: op, Key: key, Kind: ErrCorrupt, Err: fmt.Errorf(format, args...)}
}

// corruptBy is corrupt for a cause that already matches ErrCorrupt (a
// delta's decoder or ApplyDelta): the kind is said once.
func corruptBy(op, key string, err error) error {
	msg := strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": ")
	if msg == err.Error() {
		return corrupt(op, key, "%w", err)
	}
	return &Error{Op: op, Key: key, Kind: ErrCorrupt, Err: errors.New(msg)}
}

func fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return &Error{Op: op, Key: key, Err: err}
}
