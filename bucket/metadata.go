package bucket

import (
	"errors"
	"fmt"
	"maps"
)

// ErrInvalidMetadata means an Upload's metadata was rejected before any
// I/O; see ValidateMetadata.
var ErrInvalidMetadata = errors.New("invalid metadata")

// ValidateMetadata reports whether md keeps the Bucket contract's rules for
// metadata, which are what S3 user metadata (HTTP headers) carries through
// unchanged: keys are non-empty and made of lower-case ASCII letters,
// digits, '-', '_' and '.'; values are printable ASCII (space to '~').
// Memory and Dir enforce it, so that code tested against them does not
// break on S3, where an upper-case key comes back lower-cased and a
// non-ASCII value comes back encoded.
func ValidateMetadata(md map[string]string) error {
	for k, v := range md {
		if k == "" {
			return fmt.Errorf("%w: empty key", ErrInvalidMetadata)
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				return fmt.Errorf("%w: key %q: only a-z, 0-9, '-', '_' and '.' are allowed", ErrInvalidMetadata, k)
			}
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 || c > 0x7e {
				return fmt.Errorf("%w: value of %q: only printable ASCII is allowed", ErrInvalidMetadata, k)
			}
		}
	}
	return nil
}

// cloneMetadata returns a copy of md that the caller owns; it is never nil,
// so that Stat, Download, Upload and Copy always return a usable map.
func cloneMetadata(md map[string]string) map[string]string {
	c := make(map[string]string, len(md))
	maps.Copy(c, md)
	return c
}
