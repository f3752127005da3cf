package bucket

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

var (
	// ErrNotFound means the object (or, for S3, the bucket) does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrPrecondition means a write condition (If-Match, If-None-Match,
	// a copy's source ETag) did not hold; nothing was written.
	ErrPrecondition = errors.New("precondition failed")
	// ErrInvalidKey means a key was rejected before any I/O.
	ErrInvalidKey = errors.New("invalid key")
)

// Error is the error every backend returns for a failed operation: it names
// the operation and the key, and wraps the cause, which may be one of the
// sentinels above (match them with errors.Is) or a backend error.
type Error struct {
	// Op is the operation: "stat", "download", "upload", "copy", "delete",
	// "list".
	Op string
	// Key is the object key (for copy, the source key; for list, the prefix).
	Key string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("bucket: %s %q: %v", e.Op, e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// wrap returns nil for a nil err, and otherwise an *Error for op and key.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) && be.Op == op && be.Key == key {
		return err
	}
	return &Error{Op: op, Key: key, Err: err}
}

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// ValidateKey reports whether key is acceptable to every backend: non-empty,
// at most MaxKeyLen bytes of valid UTF-8 without NUL or control characters,
// relative (no leading "/"), with no empty, "." or ".." segment and no
// backslash. The same rules hold for every backend so that a snapshot can
// move between them.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("absolute (starts with /)")
	case strings.ContainsRune(key, '\\'):
		return bad("contains a backslash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return bad("has an empty path segment")
		case ".", "..":
			return bad(fmt.Sprintf("has a %q path segment", seg))
		}
	}
	return nil
}
