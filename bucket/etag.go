package bucket

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
)

// The local backends (Memory and Dir) derive an object's ETag from its
// content and metadata, so that the ETag changes exactly when either does:
// the first 128 bits of SHA-256 over the content's SHA-256 followed by the
// metadata in key order, each string length-prefixed so that no two
// different maps encode alike. It is quoted, like an HTTP entity tag.

// etagLen is the length of every local ETag, quotes included. Dir checks
// the ETags it reads from its sidecars against it.
const etagLen = 2 + 32

// newContentHash returns the hash that an object's content is streamed
// through; its sum is handed to localETag.
func newContentHash() hash.Hash { return sha256.New() }

// localETag returns the ETag of an object whose content hashed to
// contentSum (from newContentHash) and whose metadata is md.
func localETag(contentSum []byte, md map[string]string) string {
	h := sha256.New()
	h.Write(contentSum)
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		put(k)
		put(md[k])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// checkWrite evaluates an Upload's conditions against the object currently
// at the key: exists reports whether there is one, and etag is its ETag.
func checkWrite(exists bool, etag string, opts WriteOptions) error {
	switch {
	case opts.IfNoneMatch && exists:
		return fmt.Errorf("%w: an object exists (if-none-match)", ErrPrecondition)
	case opts.IfMatch != "" && !exists:
		return fmt.Errorf("%w: no object to match %s (if-match)", ErrPrecondition, opts.IfMatch)
	case opts.IfMatch != "" && etag != opts.IfMatch:
		return fmt.Errorf("%w: object has ETag %s, not %s (if-match)", ErrPrecondition, etag, opts.IfMatch)
	}
	return nil
}

// checkCopy evaluates a Copy's condition against the source's ETag.
func checkCopy(etag string, opts CopyOptions) error {
	if opts.IfSourceMatch != "" && etag != opts.IfSourceMatch {
		return fmt.Errorf("%w: source has ETag %s, not %s (if-source-match)", ErrPrecondition, etag, opts.IfSourceMatch)
	}
	return nil
}
