package bucket

import (
	"context"
	"io"
	"time"
)

// Bucket is the storage a snapshot lives in: a flat namespace of immutable
// objects addressed by key. It is deliberately small, so that every backend
// (S3, a local directory, process memory, a fault-injecting wrapper) can
// implement it completely and be held to the same conformance suite
// (package buckettest).
//
// The contract every implementation keeps:
//
//   - Keys are validated with [ValidateKey] before any I/O; an invalid key
//     returns an error matching [ErrInvalidKey].
//   - A missing object is reported by an error matching [ErrNotFound]
//     (errors.Is), whatever shape the backend reports it in.
//   - A failed write condition ([WriteOptions.IfMatch],
//     [WriteOptions.IfNoneMatch], [CopyOptions.IfSourceMatch],
//     [CopyOptions.IfMatch], [CopyOptions.IfNoneMatch]) returns an error
//     matching [ErrPrecondition] and changes nothing. An IfMatch condition
//     on a missing object is a failed precondition too. (The S3 backend
//     leaves conditions to the service, and some services ignore some of
//     them: see [S3] and [CopyOptions].)
//   - Every other error is an [*Error] naming the operation and the key.
//   - Writes are atomic: a reader sees either the previous object or the new
//     one, never a mix. Until Upload or Copy returns nil the previous object
//     stays intact; cancelling ctx aborts the write and leaves it intact.
//   - An ETag is an opaque string that changes whenever the object's content
//     or metadata changes and is stable otherwise. Callers compare ETags for
//     equality only and hand them back in conditions.
//   - Metadata keys are lower-case ASCII; values are ASCII. Backends return
//     the map they were given on Upload (and that Copy preserved).
//
// Implementations are safe for concurrent use by multiple goroutines.
type Bucket interface {
	// Stat returns the attributes of the object at key, or an error
	// matching ErrNotFound.
	Stat(ctx context.Context, key string) (Attrs, error)

	// Download writes the object at key into dst, starting at offset 0, and
	// returns the attributes of the version it wrote. Large objects may be
	// fetched in parallel ranges, so writes to dst can arrive out of order;
	// all of them describe the same object version. If ctx is cancelled or
	// the download fails, dst may hold a partial copy: callers download
	// into a temporary file they discard on error.
	Download(ctx context.Context, key string, dst io.WriterAt) (Attrs, error)

	// Upload stores size bytes read from src (at offsets 0 to size-1) as the
	// object at key, with opts.Metadata, if opts' conditions hold. It
	// returns the new object's attributes, including its ETag. Large
	// uploads may be split into parts read concurrently from src.
	Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error)

	// Copy copies the object at src to dst on the server side, with its
	// metadata, if opts' conditions hold. A missing src is ErrNotFound.
	// It returns the copy's Key, ETag and ModTime, and its Size and
	// Metadata unless opts.IfSourceMatch is set and learning them would
	// cost the backend another request (S3 leaves them zero then).
	Copy(ctx context.Context, src, dst string, opts CopyOptions) (Attrs, error)

	// Delete removes the object at key. Deleting a missing object is not
	// an error.
	Delete(ctx context.Context, key string) error

	// List returns one page of the objects whose keys start with
	// opts.Prefix, in lexical key order. A page's NextToken is empty on the
	// last page; otherwise pass it back as opts.Token for the next page.
	List(ctx context.Context, opts ListOptions) (ListPage, error)
}

// Attrs describes one stored object.
type Attrs struct {
	// Key is the object's key.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ETag identifies this version of the object; see the Bucket contract.
	ETag string
	// ModTime is when the object was last written, as the backend reports it.
	ModTime time.Time
	// Metadata is the user metadata stored with the object. It is nil in
	// List results, where backends do not return it.
	Metadata map[string]string
}

// WriteOptions are the metadata and conditions of an Upload.
type WriteOptions struct {
	// Metadata is stored with the object (lower-case keys).
	Metadata map[string]string
	// IfNoneMatch makes the write succeed only if no object exists at the
	// key (HTTP If-None-Match: *).
	IfNoneMatch bool
	// IfMatch, when set, makes the write succeed only if the object at the
	// key currently has this ETag (HTTP If-Match). A missing object fails
	// the condition.
	IfMatch string
}

// CopyOptions are the conditions of a Copy: on its source, and on what
// the copy replaces at its destination.
//
// The destination conditions keep a copy from overwriting an object its
// caller does not know. Memory, Dir and AWS S3 enforce them; some
// S3-compatible services ignore them and copy anyway (versitygw v1.8.0;
// Cloudflare R2, which spells them cf-copy-destination-if-match), so do
// not make them the only thing between a copy and an object that must
// survive it.
type CopyOptions struct {
	// IfSourceMatch, when set, makes the copy succeed only if the source
	// object currently has this ETag.
	IfSourceMatch string
	// IfMatch, when set, makes the copy succeed only if the object at the
	// destination currently has this ETag (HTTP If-Match on the copy). A
	// missing destination fails the condition.
	IfMatch string
	// IfNoneMatch makes the copy succeed only if no object exists at the
	// destination (HTTP If-None-Match: * on the copy).
	IfNoneMatch bool
}

// ListOptions select a page of a List.
type ListOptions struct {
	// Prefix restricts the listing to keys starting with it.
	Prefix string
	// PageSize caps the number of objects in a page; 0 lets the backend
	// choose (at most 1000).
	PageSize int
	// Token continues a listing from a previous page's NextToken.
	Token string
}

// ListPage is one page of a List.
type ListPage struct {
	// Objects are the page's objects in lexical key order, without Metadata.
	Objects []Attrs
	// NextToken is empty on the last page.
	NextToken string
}

// ListAll collects every object under prefix, following pages.
func ListAll(ctx context.Context, b Bucket, prefix string) ([]Attrs, error) {
	var all []Attrs
	opts := ListOptions{Prefix: prefix}
	for {
		page, err := b.List(ctx, opts)
		if err != nil {
			return all, err
		}
		all = append(all, page.Objects...)
		if page.NextToken == "" {
			return all, nil
		}
		opts.Token = page.NextToken
	}
}
