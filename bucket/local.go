package bucket

// Helpers shared by the local backends, Memory and Dir.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// chunkSize is how much the local backends move between two checks of ctx.
const chunkSize = 1 << 20

// readSource reads size bytes from src, from offset 0 on, and hands them to
// sink a chunk at a time (the slice is only valid during the call). It
// stops with ctx's error once ctx is done, and fails if src holds fewer than
// size bytes.
func readSource(ctx context.Context, src io.ReaderAt, size int64, sink func([]byte) error) error {
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if size > 0 && src == nil {
		return errors.New("nil source")
	}
	buf := make([]byte, min(size, chunkSize))
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(size-off, chunkSize)]
		n, err := src.ReadAt(p, off)
		if n < len(p) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read source at offset %d of %d: %w", off+int64(n), size, err)
		}
		// A ReaderAt may report io.EOF along with the last full read.
		if err := sink(p); err != nil {
			return err
		}
		off += int64(n)
	}
	return ctx.Err()
}

// writeDest copies size bytes from r into dst at offsets 0 to size-1,
// checking ctx between chunks.
func writeDest(ctx context.Context, dst io.WriterAt, r io.Reader, size int64) error {
	buf := make([]byte, min(size, chunkSize))
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(size-off, chunkSize)]
		if _, err := io.ReadFull(r, p); err != nil {
			return err
		}
		if _, err := dst.WriteAt(p, off); err != nil {
			return fmt.Errorf("write destination at offset %d: %w", off, err)
		}
		off += int64(len(p))
	}
	return ctx.Err()
}

// pageLimit returns how many objects a List page may hold.
func pageLimit(opts ListOptions) int {
	if opts.PageSize <= 0 || opts.PageSize > maxPageSize {
		return maxPageSize
	}
	return opts.PageSize
}

// maxPageSize is the largest List page, S3's limit.
const maxPageSize = 1000

// pageKeys picks one List page from keys, which are sorted and already
// restricted to opts.Prefix: the keys after opts.Token, at most
// pageLimit(opts) of them, and the token for the next page (the last key
// returned, or "" when none are left).
func pageKeys(keys []string, opts ListOptions) (page []string, next string) {
	i, _ := slices.BinarySearch(keys, opts.Token)
	if i < len(keys) && opts.Token != "" && keys[i] == opts.Token {
		i++
	}
	keys = keys[i:]
	if n := pageLimit(opts); len(keys) > n {
		return keys[:n], keys[n-1]
	}
	return keys, ""
}

// firstErr returns the first non-nil error of errs.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
