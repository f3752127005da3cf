package bucket

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Bucket held in process memory, for tests, examples and
// programs that want a database/sql handle on a throwaway database. It
// keeps the whole Bucket contract (conditions, ETags, paging, key rules)
// so that code tested against it behaves the same on S3.
//
// Data is copied in on Upload and out on Download, Stat and List: callers
// never share stored bytes or metadata maps. An Upload reads all of its
// source before it takes the bucket's lock, and stores nothing if ctx is
// done by then. ETags are derived from content and metadata, so uploading
// the same bytes and metadata twice gives the same ETag.
//
// The zero value is not usable; call NewMemory, or Mem for a bucket shared
// by name across one process.
type Memory struct {
	mu      sync.Mutex
	objects map[string]*memObject
}

// memObject is one stored version. It is never modified once stored, so it
// can be read outside the lock and shared by Copy.
type memObject struct {
	data     []byte
	metadata map[string]string
	etag     string
	modTime  time.Time
}

var _ Bucket = (*Memory)(nil)

// NewMemory returns a new, empty memory bucket, private to its caller.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string]*memObject)}
}

// memRegistry holds the named buckets that Mem hands out.
var memRegistry = struct {
	sync.Mutex
	m map[string]*Memory
}{m: make(map[string]*Memory)}

// Mem returns the process-wide memory bucket called name, creating it empty
// on first use. Every call with the same name, from any goroutine, returns
// the same *Memory until ForgetMem(name): this is how two parts of one
// process (say, a test and the database/sql driver it opened through a
// mem:// URL) share one bucket. A named bucket lives until it is forgotten.
func Mem(name string) *Memory {
	memRegistry.Lock()
	defer memRegistry.Unlock()
	m, ok := memRegistry.m[name]
	if !ok {
		m = NewMemory()
		memRegistry.m[name] = m
	}
	return m
}

// ForgetMem removes the bucket called name from the registry behind Mem, so
// that its memory can be reclaimed and the next Mem(name) returns a new,
// empty bucket. Holders of the old *Memory can go on using it.
func ForgetMem(name string) {
	memRegistry.Lock()
	defer memRegistry.Unlock()
	delete(memRegistry.m, name)
}

func (o *memObject) attrs(key string) Attrs {
	return Attrs{
		Key:      key,
		Size:     int64(len(o.data)),
		ETag:     o.etag,
		ModTime:  o.modTime,
		Metadata: cloneMetadata(o.metadata),
	}
}

// get returns the object at key, or nil.
func (m *Memory) get(key string) *memObject {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objects[key]
}

// Stat implements Bucket.
func (m *Memory) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := firstErr(ValidateKey(key), ctx.Err()); err != nil {
		return Attrs{}, wrap("stat", key, err)
	}
	o := m.get(key)
	if o == nil {
		return Attrs{}, wrap("stat", key, ErrNotFound)
	}
	return o.attrs(key), nil
}

// Download implements Bucket.
func (m *Memory) Download(ctx context.Context, key string, dst io.WriterAt) (Attrs, error) {
	if err := firstErr(ValidateKey(key), ctx.Err()); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	o := m.get(key)
	if o == nil {
		return Attrs{}, wrap("download", key, ErrNotFound)
	}
	if err := writeDest(ctx, dst, bytes.NewReader(o.data), int64(len(o.data))); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	return o.attrs(key), nil
}

// Upload implements Bucket.
func (m *Memory) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error) {
	if err := firstErr(ValidateKey(key), ValidateMetadata(opts.Metadata), ctx.Err()); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	data := make([]byte, 0, max(size, 0))
	h := newContentHash()
	err := readSource(ctx, src, size, func(p []byte) error {
		data = append(data, p...)
		h.Write(p)
		return nil
	})
	if err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	md := cloneMetadata(opts.Metadata)
	o := &memObject{data: data, metadata: md, etag: localETag(h.Sum(nil), md)}

	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	cur := m.objects[key]
	if err := checkWrite(cur != nil, etagOf(cur), opts); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	o.modTime = time.Now().Round(0)
	m.objects[key] = o
	return o.attrs(key), nil
}

// Copy implements Bucket.
func (m *Memory) Copy(ctx context.Context, src, dst string, opts CopyOptions) (Attrs, error) {
	if err := firstErr(ValidateKey(src), ValidateKey(dst), ctx.Err()); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.objects[src]
	if o == nil {
		return Attrs{}, wrap("copy", src, ErrNotFound)
	}
	cur := m.objects[dst]
	if err := firstErr(checkCopy(o.etag, opts), checkCopyDest(cur != nil, etagOf(cur), opts)); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	c := *o
	c.modTime = time.Now().Round(0)
	m.objects[dst] = &c
	return c.attrs(dst), nil
}

// Delete implements Bucket.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := firstErr(ValidateKey(key), ctx.Err()); err != nil {
		return wrap("delete", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

// List implements Bucket.
func (m *Memory) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	if err := ctx.Err(); err != nil {
		return ListPage{}, wrap("list", opts.Prefix, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range maps.Keys(m.objects) {
		if strings.HasPrefix(k, opts.Prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	page, next := pageKeys(keys, opts)
	out := ListPage{Objects: make([]Attrs, len(page)), NextToken: next}
	for i, k := range page {
		a := m.objects[k].attrs(k)
		a.Metadata = nil
		out.Objects[i] = a
	}
	return out, nil
}

// etagOf returns o's ETag, or "" for a missing object.
func etagOf(o *memObject) string {
	if o == nil {
		return ""
	}
	return o.etag
}
