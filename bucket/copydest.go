package bucket

import "fmt"

// checkCopyDest evaluates a Copy's destination conditions against the
// object currently at the destination: exists reports whether there is
// one, and etag is its ETag.
func checkCopyDest(exists bool, etag string, opts CopyOptions) error {
	if err := checkWrite(exists, etag, WriteOptions{IfMatch: opts.IfMatch, IfNoneMatch: opts.IfNoneMatch}); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	return nil
}
