package bucket

import (
	"context"
	"errors"
	"io"
	"strings"
)

// WithPrefix returns a view of b in which every key is prefix+key: a
// caller's "db" is b's "prefix/db" when prefix is "prefix/". The prefix is
// used as given, so it usually ends in "/". List takes and returns keys
// without the prefix, and errors name the caller's key, not b's. Keys are
// validated before the prefix is added, so that "" or "../x" stay invalid
// whatever the prefix. An empty prefix returns b itself.
func WithPrefix(b Bucket, prefix string) Bucket {
	if prefix == "" {
		return b
	}
	return &prefixed{b: b, prefix: prefix}
}

// prefixed is the Bucket returned by WithPrefix.
type prefixed struct {
	b      Bucket
	prefix string
}

// fix rewrites an error or attributes from the inner bucket so that they
// name the caller's key.
func (p *prefixed) fix(a Attrs, err error) (Attrs, error) {
	a.Key = strings.TrimPrefix(a.Key, p.prefix)
	return a, p.fixErr(err)
}

// fixErr rewrites an *Error from the inner bucket to name the caller's key.
func (p *prefixed) fixErr(err error) error {
	var be *Error
	if errors.As(err, &be) && strings.HasPrefix(be.Key, p.prefix) {
		return &Error{Op: be.Op, Key: strings.TrimPrefix(be.Key, p.prefix), Err: be.Err}
	}
	return err
}

// Stat implements Bucket on prefix+key.
func (p *prefixed) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, wrap("stat", key, err)
	}
	return p.fix(p.b.Stat(ctx, p.prefix+key))
}

// Download implements Bucket on prefix+key.
func (p *prefixed) Download(ctx context.Context, key string, dst io.WriterAt) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	return p.fix(p.b.Download(ctx, p.prefix+key, dst))
}

// Upload implements Bucket on prefix+key.
func (p *prefixed) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	return p.fix(p.b.Upload(ctx, p.prefix+key, src, size, opts))
}

// Copy implements Bucket on prefix+src and prefix+dst.
func (p *prefixed) Copy(ctx context.Context, src, dst string, opts CopyOptions) (Attrs, error) {
	if err := firstErr(ValidateKey(src), ValidateKey(dst)); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	return p.fix(p.b.Copy(ctx, p.prefix+src, p.prefix+dst, opts))
}

// Delete implements Bucket on prefix+key.
func (p *prefixed) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return wrap("delete", key, err)
	}
	return p.fixErr(p.b.Delete(ctx, p.prefix+key))
}

// List implements Bucket under prefix+opts.Prefix, and strips prefix from the keys it returns.
func (p *prefixed) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	inner := opts
	inner.Prefix = p.prefix + opts.Prefix
	page, err := p.b.List(ctx, inner)
	if err != nil {
		return page, p.fixErr(err)
	}
	for i := range page.Objects {
		page.Objects[i].Key = strings.TrimPrefix(page.Objects[i].Key, p.prefix)
	}
	return page, nil
}
