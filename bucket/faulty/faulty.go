package faulty

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Op names a bucket operation, as bucket.Error.Op spells it.
type Op string

// The operations of bucket.Bucket, and Any, which matches all of them.
const (
	Stat     Op = "stat"
	Download Op = "download"
	Upload   Op = "upload"
	Copy     Op = "copy"
	Delete   Op = "delete"
	List     Op = "list"
	// Any matches every operation in a rule. Calls(Any) counts all calls.
	Any Op = "*"
)

// Every, as a rule's call number, makes the rule apply to every call.
const Every = 0

// ErrInjected is the cause of every error a Fault makes up (Fail(nil),
// FailAfter(nil), Truncate): errors.Is(err, ErrInjected) tells an injected
// failure from a real one.
var ErrInjected = errors.New("faulty: injected fault")

type kind int

const (
	kindFail kind = iota + 1
	kindFailAfter
	kindDelay
	kindHang
	kindTruncate
	kindLie
	kindIgnoreConditions
)

// Fault is what happens to a call a rule selects. Make one with Fail,
// FailAfter, Delay, Hang, Truncate, TruncateSilently, Lie or
// IgnoreConditions.
type Fault struct {
	kind   kind
	err    error
	delay  time.Duration
	keep   int64
	silent bool
}

// Fail makes the call return err without reaching the inner bucket: nothing
// is read, written or stored. A nil err means an error matching
// ErrInjected. err is wrapped in a *bucket.Error naming the operation and
// key, unless it is one already, so that Fail(bucket.ErrNotFound) or
// Fail(bucket.ErrPrecondition) look exactly like the real thing.
func Fail(err error) Fault { return Fault{kind: kindFail, err: err} }

// FailAfter makes the call go through to the inner bucket and then return
// err (ErrInjected when nil) instead of its result: the write happened,
// but the caller is told it did not. This is a request whose response was
// lost (a cut connection, a timeout that fired just too late), the
// ambiguous failure every client of a remote store must survive.
func FailAfter(err error) Fault { return Fault{kind: kindFailAfter, err: err} }

// Delay makes the call wait d before going through, or return ctx's error
// if ctx ends first (and then nothing is done).
func Delay(d time.Duration) Fault { return Fault{kind: kindDelay, delay: d} }

// Hang makes the call block until ctx ends and return ctx's error; nothing
// is done. It shows whether a caller bounds its calls with a deadline.
func Hang() Fault { return Fault{kind: kindHang} }

// Truncate makes an Upload store, or a Download deliver, only a prefix of
// the content, and then report an error. n >= 0 keeps the first n bytes; n
// < 0 drops the last -n bytes. The inner bucket stores (or the destination
// receives) that prefix for real: this is a backend that breaks the
// atomicity every bucket.Bucket promises.
//
// On operations that move no content (Stat, Copy, Delete, List), Truncate
// acts as Fail(nil).
func Truncate(n int64) Fault { return Fault{kind: kindTruncate, keep: n} }

// TruncateSilently is Truncate that reports success: Upload returns the
// stored object's attributes with the Size the caller asked for, Download
// returns the full object's attributes. It is the nastiest fault: nothing
// but checking the content reveals it.
//
// On operations that move no content it acts as Lie.
func TruncateSilently(n int64) Fault { return Fault{kind: kindTruncate, keep: n, silent: true} }

// Lie makes the call report success without doing anything:
//
//   - Upload stores nothing and returns made-up attributes: the Size asked
//     for, the metadata given, and an ETag no object has.
//   - Download writes nothing into dst and returns the object's real
//     attributes (an error if there is no object).
//   - Copy copies nothing and returns the source's attributes under the
//     destination key (an error if there is no source).
//   - Delete deletes nothing and returns nil.
//   - Stat returns attributes holding only the key.
//   - List returns an empty last page.
func Lie() Fault { return Fault{kind: kindLie} }

// IgnoreConditions makes an Upload or Copy drop its conditions
// (WriteOptions.IfMatch and IfNoneMatch; CopyOptions.IfSourceMatch,
// IfMatch and IfNoneMatch) and go through unconditionally, as the s3rver
// test server, and any S3-compatible service without conditional writes,
// does: a second writer overwrites the first without an error. Other
// operations go through unchanged. Apply it to every call to make such a
// service:
//
//	b.Inject(faulty.Any, faulty.Every, faulty.IgnoreConditions())
func IgnoreConditions() Fault { return Fault{kind: kindIgnoreConditions} }

// String describes the fault, for test names.
func (f Fault) String() string {
	switch f.kind {
	case kindFail:
		if f.err != nil {
			return fmt.Sprintf("fail(%v)", f.err)
		}
		return "fail"
	case kindFailAfter:
		return "fail-after"
	case kindDelay:
		return fmt.Sprintf("delay(%v)", f.delay)
	case kindHang:
		return "hang"
	case kindTruncate:
		s := "truncate"
		if f.silent {
			s = "truncate-silently"
		}
		return fmt.Sprintf("%s(%d)", s, f.keep)
	case kindLie:
		return "lie"
	case kindIgnoreConditions:
		return "ignore-conditions"
	}
	return "none"
}

// Bucket wraps a bucket.Bucket and injects faults into the calls that its
// rules select. Calls no rule selects go straight through. Make one with
// New; it is safe for concurrent use.
type Bucket struct {
	inner bucket.Bucket

	mu    sync.Mutex
	rules []*Rule
	calls map[Op]int
	lies  int
}

var _ bucket.Bucket = (*Bucket)(nil)

// New returns a Bucket that forwards to inner until rules are added.
func New(inner bucket.Bucket) *Bucket {
	return &Bucket{inner: inner, calls: map[Op]int{}}
}

// Inner returns the wrapped bucket, to inspect or repair it behind the
// faults' back.
func (b *Bucket) Inner() bucket.Bucket { return b.inner }

// Rule is an injected fault, returned by Inject and InjectFunc.
type Rule struct {
	b     *Bucket
	op    Op
	call  int
	fault Fault
	fn    func(call int, key string) (Fault, bool)
	seen  int // matching calls since the rule was added
	fired int
}

// Inject adds a rule: the call-th call of op from now on (1 is the next
// one), or every call of op when call is Every, suffers f. Rules are
// tried in the order they were added and the first that applies wins;
// every rule counts the calls of its op, whether it fires or not.
func (b *Bucket) Inject(op Op, call int, f Fault) *Rule {
	return b.add(&Rule{op: op, call: call, fault: f})
}

// InjectFunc adds a rule that asks fn about every call of op: call is the
// number of calls of op since the rule was added (1 for the first) and key
// the call's key (a copy's source, a list's prefix); fn returns the fault
// and true to apply it. fn runs with the Bucket's lock held: keep it
// short and do not call the Bucket from it. A seeded math/rand source in
// fn gives reproducible random faults.
func (b *Bucket) InjectFunc(op Op, fn func(call int, key string) (Fault, bool)) *Rule {
	return b.add(&Rule{op: op, fn: fn})
}

func (b *Bucket) add(r *Rule) *Rule {
	r.b = b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = append(b.rules, r)
	return r
}

// Fired reports how often the rule has applied its fault. A test that
// injects a fault should check it fired: a rule aimed at the wrong
// operation or call proves nothing.
func (r *Rule) Fired() int {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	return r.fired
}

// Remove removes the rule; calls in progress are not affected.
func (r *Rule) Remove() {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	for i, x := range r.b.rules {
		if x == r {
			r.b.rules = append(r.b.rules[:i:i], r.b.rules[i+1:]...)
			return
		}
	}
}

// Clear removes every rule: the faults stop, the call counts go on.
func (b *Bucket) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = nil
}

// Calls returns how many calls of op were made since New, faulted or not;
// Calls(Any) counts every call.
func (b *Bucket) Calls(op Op) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if op == Any {
		n := 0
		for _, c := range b.calls {
			n += c
		}
		return n
	}
	return b.calls[op]
}

// pick counts a call and returns the fault to apply, if any.
func (b *Bucket) pick(op Op, key string) (Fault, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[op]++
	var (
		f   Fault
		hit bool
	)
	for _, r := range b.rules {
		if r.op != op && r.op != Any {
			continue
		}
		r.seen++
		if hit {
			continue
		}
		switch {
		case r.fn != nil:
			f, hit = r.fn(r.seen, key)
		case r.call == Every || r.call == r.seen:
			f, hit = r.fault, true
		}
		if hit {
			r.fired++
		}
	}
	return f, hit
}

// failure returns the error a fault reports for op on key.
func failure(op Op, key string, err error, format string, args ...any) error {
	if err == nil {
		err = ErrInjected
		if format != "" {
			err = fmt.Errorf("%w: "+format, append([]any{ErrInjected}, args...)...)
		}
	}
	var be *bucket.Error
	if errors.As(err, &be) {
		return err
	}
	return &bucket.Error{Op: string(op), Key: key, Err: err}
}

// before applies the part of f that comes before the inner call. It
// returns proceed=false with the error to return when the call must not
// reach the inner bucket.
func before(ctx context.Context, op Op, key string, f Fault) (proceed bool, err error) {
	switch f.kind {
	case kindFail:
		return false, failure(op, key, f.err, "")
	case kindHang:
		<-ctx.Done()
		return false, failure(op, key, ctx.Err(), "")
	case kindDelay:
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, failure(op, key, ctx.Err(), "")
		case <-t.C:
		}
	case kindTruncate:
		if op != Upload && op != Download {
			if f.silent {
				return true, nil // handled as a lie by the caller
			}
			return false, failure(op, key, nil, "")
		}
	}
	return true, nil
}

// lies reports whether f makes a call that moves no content lie.
func lies(f Fault) bool {
	return f.kind == kindLie || f.kind == kindTruncate && f.silent
}

// Stat implements bucket.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (bucket.Attrs, error) {
	f, hit := b.pick(Stat, key)
	if !hit {
		return b.inner.Stat(ctx, key)
	}
	if ok, err := before(ctx, Stat, key, f); !ok {
		return bucket.Attrs{}, err
	}
	if lies(f) {
		return bucket.Attrs{Key: key}, nil
	}
	a, err := b.inner.Stat(ctx, key)
	if err == nil && f.kind == kindFailAfter {
		return bucket.Attrs{}, failure(Stat, key, f.err, "")
	}
	return a, err
}

// Download implements bucket.Bucket. A Truncate fault buffers the whole
// object in memory before handing dst its prefix.
func (b *Bucket) Download(ctx context.Context, key string, dst io.WriterAt) (bucket.Attrs, error) {
	f, hit := b.pick(Download, key)
	if !hit {
		return b.inner.Download(ctx, key, dst)
	}
	if ok, err := before(ctx, Download, key, f); !ok {
		return bucket.Attrs{}, err
	}
	switch f.kind {
	case kindLie:
		a, err := b.inner.Stat(ctx, key)
		return a, reop(Download, key, err)
	case kindTruncate:
		var buf memWriter
		a, err := b.inner.Download(ctx, key, &buf)
		if err != nil {
			return a, err
		}
		keep := keepOf(f.keep, a.Size)
		if _, err := dst.WriteAt(buf.p[:min(keep, int64(len(buf.p)))], 0); err != nil {
			return bucket.Attrs{}, failure(Download, key, err, "")
		}
		if !f.silent {
			return bucket.Attrs{}, failure(Download, key, nil, "delivered only %d of %d bytes", keep, a.Size)
		}
		return a, nil
	}
	a, err := b.inner.Download(ctx, key, dst)
	if err == nil && f.kind == kindFailAfter {
		return bucket.Attrs{}, failure(Download, key, f.err, "")
	}
	return a, err
}

// Upload implements bucket.Bucket.
func (b *Bucket) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts bucket.WriteOptions) (bucket.Attrs, error) {
	f, hit := b.pick(Upload, key)
	if !hit {
		return b.inner.Upload(ctx, key, src, size, opts)
	}
	if ok, err := before(ctx, Upload, key, f); !ok {
		return bucket.Attrs{}, err
	}
	if f.kind == kindIgnoreConditions {
		opts.IfMatch, opts.IfNoneMatch = "", false
	}
	switch f.kind {
	case kindLie:
		b.mu.Lock()
		b.lies++
		n := b.lies
		b.mu.Unlock()
		return bucket.Attrs{
			Key:      key,
			Size:     size,
			ETag:     fmt.Sprintf(`"faulty-lie-%d"`, n),
			ModTime:  time.Now().Round(0),
			Metadata: maps.Clone(opts.Metadata),
		}, nil
	case kindTruncate:
		keep := keepOf(f.keep, size)
		// Hide src's optional interfaces (a precomputed hash, say): the
		// inner bucket must store the prefix as if it were all there is.
		a, err := b.inner.Upload(ctx, key, plainReaderAt{src}, keep, opts)
		if err != nil {
			return a, err
		}
		if !f.silent {
			return bucket.Attrs{}, failure(Upload, key, nil, "stored only %d of %d bytes", keep, size)
		}
		a.Size = size
		return a, nil
	}
	a, err := b.inner.Upload(ctx, key, src, size, opts)
	if err == nil && f.kind == kindFailAfter {
		return bucket.Attrs{}, failure(Upload, key, f.err, "")
	}
	return a, err
}

// Copy implements bucket.Bucket.
func (b *Bucket) Copy(ctx context.Context, src, dst string, opts bucket.CopyOptions) (bucket.Attrs, error) {
	f, hit := b.pick(Copy, src)
	if !hit {
		return b.inner.Copy(ctx, src, dst, opts)
	}
	if ok, err := before(ctx, Copy, src, f); !ok {
		return bucket.Attrs{}, err
	}
	if f.kind == kindIgnoreConditions {
		opts = bucket.CopyOptions{}
	}
	if lies(f) {
		a, err := b.inner.Stat(ctx, src)
		if err != nil {
			return bucket.Attrs{}, reop(Copy, src, err)
		}
		a.Key = dst
		return a, nil
	}
	a, err := b.inner.Copy(ctx, src, dst, opts)
	if err == nil && f.kind == kindFailAfter {
		return bucket.Attrs{}, failure(Copy, src, f.err, "")
	}
	return a, err
}

// Delete implements bucket.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	f, hit := b.pick(Delete, key)
	if !hit {
		return b.inner.Delete(ctx, key)
	}
	if ok, err := before(ctx, Delete, key, f); !ok {
		return err
	}
	if lies(f) {
		return nil
	}
	err := b.inner.Delete(ctx, key)
	if err == nil && f.kind == kindFailAfter {
		return failure(Delete, key, f.err, "")
	}
	return err
}

// List implements bucket.Bucket.
func (b *Bucket) List(ctx context.Context, opts bucket.ListOptions) (bucket.ListPage, error) {
	f, hit := b.pick(List, opts.Prefix)
	if !hit {
		return b.inner.List(ctx, opts)
	}
	if ok, err := before(ctx, List, opts.Prefix, f); !ok {
		return bucket.ListPage{}, err
	}
	if lies(f) {
		return bucket.ListPage{}, nil
	}
	p, err := b.inner.List(ctx, opts)
	if err == nil && f.kind == kindFailAfter {
		return bucket.ListPage{}, failure(List, opts.Prefix, f.err, "")
	}
	return p, err
}

// reop makes an error of the inner Stat that a lie needed look like an
// error of op.
func reop(op Op, key string, err error) error {
	var be *bucket.Error
	if errors.As(err, &be) {
		return &bucket.Error{Op: string(op), Key: key, Err: be.Err}
	}
	return err
}

// keepOf returns how many of size bytes a truncation keeps.
func keepOf(n, size int64) int64 {
	if n < 0 {
		n += size
	}
	return max(0, min(n, size))
}

// plainReaderAt is an io.ReaderAt and nothing else.
type plainReaderAt struct{ r io.ReaderAt }

func (p plainReaderAt) ReadAt(b []byte, off int64) (int, error) { return p.r.ReadAt(b, off) }

// memWriter is an io.WriterAt into memory, safe for concurrent writes.
type memWriter struct {
	mu sync.Mutex
	p  []byte
}

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(w.p)) {
		w.p = append(w.p, make([]byte, end-int64(len(w.p)))...)
	}
	copy(w.p[off:], p)
	return len(p), nil
}
