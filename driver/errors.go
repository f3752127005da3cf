package driver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// opError is a failed operation on a database: it names the operation and
// the database (its location and key) once, then the cause, from which the
// layers below have their own mention of the key removed. errors.Is and
// errors.As see the whole chain.
type opError struct {
	op, where, key string
	err            error
}

func (e *opError) Error() string {
	return fmt.Sprintf("bucketsqlite: %s %s: %s", e.op, e.where, describe(e.err, e.key))
}

func (e *opError) Unwrap() error { return e.err }

// wrap returns err as a failure of op on c's database, unless it already
// is one.
func (c *database) wrap(op string, err error) error {
	var oe *opError
	if errors.As(err, &oe) || errors.Is(err, ErrInvalidDSN) {
		return err
	}
	return &opError{op: op, where: c.where, key: c.cfg.Key, err: err}
}

// describe renders err for a message that already names key: each
// snapshot and bucket error in the chain says its operation and kind, and
// its key only when it is another one (KEY.prev, say).
func describe(err error, key string) string {
	switch e := err.(type) {
	case *snapshot.Error:
		s := describe(e.Err, key)
		if e.Key != key {
			s = fmt.Sprintf("%s %q: %s", e.Op, e.Key, s)
		}
		if e.Kind != nil {
			s = e.Kind.Error() + ": " + s
		}
		return s
	case *bucket.Error:
		s := e.Op
		if e.Key != key {
			s += fmt.Sprintf(" %q", e.Key)
		}
		return s + ": " + describe(e.Err, key)
	}
	// A wrapping with a prefix of its own ("keep previous: %w").
	if inner := errors.Unwrap(err); inner != nil {
		full, in := err.Error(), inner.Error()
		if prefix, ok := strings.CutSuffix(full, in); ok {
			return prefix + describe(inner, key)
		}
	}
	return err.Error()
}
