package bucket

// Transfers of object content for S3: everything that uses
// feature/s3/manager lives in this file, so that the deprecated package
// can be swapped for its successor (feature/s3/transfermanager) in one
// place.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const (
	// s3DefaultPartSize is the smallest part (and download range) size
	// picked when S3Config.PartSize is zero. Every part and range is a
	// billed request, so parts are large: a 1 GiB snapshot moves in 16.
	s3DefaultPartSize = 64 << 20
	// s3DefaultThreshold is the largest object moved in one request (one
	// PutObject, one GetObject) when S3Config.PartSize and
	// MultipartThreshold are zero. One request is the cheapest transfer,
	// and up to this size about as fast as parallel parts on most links.
	s3DefaultThreshold = 512 << 20
	// s3DefaultConcurrency is the default number of parts or ranges in
	// flight.
	s3DefaultConcurrency = 5
	// s3CopyBuffer is the most a download moves per read of a response.
	s3CopyBuffer = 256 << 10
	// s3AbortTimeout bounds the abort of a multipart upload whose context
	// is done: the abort runs on without it, or the parts stay billed.
	s3AbortTimeout = 30 * time.Second
)

// s3Transfer moves object content in and out of S3.
type s3Transfer struct {
	client      *s3.Client
	uploader    *manager.Uploader
	partSize    int64 // 0: sized per object
	threshold   int64 // 0: one part size
	concurrency int
}

func newS3Transfer(client *s3.Client, cfg S3Config) s3Transfer {
	t := s3Transfer{
		client:      client,
		partSize:    cfg.PartSize,
		threshold:   cfg.MultipartThreshold,
		concurrency: cfg.Concurrency,
	}
	if t.concurrency == 0 {
		t.concurrency = s3DefaultConcurrency
	}
	t.uploader = manager.NewUploader(client, func(u *manager.Uploader) {
		u.Concurrency = t.concurrency
		// The uploader adds CRC32 checksums unless told otherwise,
		// whatever the client says: follow the client.
		u.RequestChecksumCalculation = client.Options().RequestChecksumCalculation
	})
	return t
}

// partSizeFor returns the part size for an object of size bytes.
func (t *s3Transfer) partSizeFor(size int64) int64 {
	if t.partSize > 0 {
		return t.partSize // the uploader grows it if 10,000 parts are too few
	}
	ps := (size + s3MaxParts - 1) / s3MaxParts
	ps = (ps + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB
	return max(ps, s3DefaultPartSize)
}

// thresholdFor returns the size above which an object of size bytes is
// uploaded in parts.
func (t *s3Transfer) thresholdFor(size int64) int64 {
	if t.threshold > 0 {
		return min(t.threshold, s3MaxPutSize)
	}
	if t.partSize > 0 {
		return min(t.partSize, s3MaxPutSize)
	}
	return s3DefaultThreshold
}

// SHA256Source is an Upload source that knows the SHA-256 of its bytes,
// such as a snapshot hashed when it was taken. The S3 backend signs a
// single-request upload with that hash (x-amz-content-sha256) instead of
// reading the whole source once more to compute it before sending it;
// the service checks the bytes it receives against it, so a hash that
// does not match them fails the upload and leaves the previous object
// in place. Multipart uploads hash each part as usual.
type SHA256Source interface {
	io.ReaderAt
	// SHA256 returns the lower-case hex SHA-256 of the bytes at offsets 0
	// to size-1, size being what Upload is given.
	SHA256() string
}

// upload stores size bytes of src at key. Nothing is buffered whole: both
// the single PutObject and the parts read sections of src, which must be
// seekable for signing over plain HTTP.
func (t *s3Transfer) upload(ctx context.Context, bucket, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error) {
	in := &s3.PutObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		Body:   io.NewSectionReader(src, 0, size),
	}
	if len(opts.Metadata) > 0 {
		in.Metadata = cloneMetadata(opts.Metadata)
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	a := Attrs{Key: key, Size: size, Metadata: cloneMetadata(opts.Metadata)}

	if size <= t.thresholdFor(size) {
		in.ContentLength = aws.Int64(size)
		var signed []func(*s3.Options)
		if h, ok := src.(SHA256Source); ok {
			signed = append(signed, withPayloadHash(h.SHA256()))
		}
		out, err := t.client.PutObject(ctx, in, signed...)
		if err != nil {
			return Attrs{}, s3Error(ctx, err, opts.IfMatch != "")
		}
		a.ETag = aws.ToString(out.ETag)
		a.ModTime = responseDate(out.ResultMetadata)
		return a, nil
	}

	var done completeDate
	out, err := t.uploader.Upload(ctx, in, func(u *manager.Uploader) {
		u.PartSize = t.partSizeFor(size)
		u.ClientOptions = append(u.ClientOptions, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, done.register)
		})
	})
	if err != nil {
		err = s3Error(ctx, err, opts.IfMatch != "")
		var failed manager.MultiUploadFailure
		if errors.As(err, &failed) && failed.UploadID() != "" && ctx.Err() != nil {
			// The uploader aborts with ctx, which is done: abort without it.
			if abortErr := t.abort(ctx, bucket, key, failed.UploadID()); abortErr != nil {
				err = fmt.Errorf("%w (and aborting the multipart upload failed, its parts stay stored: %v)",
					err, abortErr)
			}
		}
		return Attrs{}, err
	}
	a.ETag = aws.ToString(out.ETag)
	a.ModTime = done.get()
	return a, nil
}

// withPayloadHash makes a request sign hash as its payload's SHA-256,
// which the SDK otherwise computes by reading the body before sending it
// (over plain HTTP; over HTTPS it sends UNSIGNED-PAYLOAD, which a known
// hash replaces, so the service verifies the bytes there too).
func withPayloadHash(hash string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("bucketsqlite.payloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
					middleware.FinalizeOutput, middleware.Metadata, error,
				) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hash), in)
				}), "ResolveEndpointV2", middleware.After)
		})
	}
}

// abort aborts a multipart upload, even though ctx is done.
func (t *s3Transfer) abort(ctx context.Context, bucket, key, uploadID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3AbortTimeout)
	defer cancel()
	_, err := t.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(bucket),
		Key:      aws.String(key),
		UploadId: aws.String(uploadID),
	})
	if isCode(err, "NoSuchUpload") {
		return nil // already aborted
	}
	return err
}

// completeDate records the Date header of a CompleteMultipartUpload
// response, which the uploader does not pass on.
type completeDate struct {
	mu sync.Mutex
	t  time.Time
}

func (d *completeDate) register(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("bucketsqlite.completeDate",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
			middleware.DeserializeOutput, middleware.Metadata, error,
		) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if err == nil && middleware.GetOperationName(ctx) == "CompleteMultipartUpload" {
				if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
					if t, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
						d.mu.Lock()
						d.t = t
						d.mu.Unlock()
					}
				}
			}
			return out, md, err
		}), middleware.After)
}

func (d *completeDate) get() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.t.IsZero() {
		return time.Now().Round(0)
	}
	return d.t
}

// download writes the object at key into dst. The first request is a GET
// of the first range, which says the object's size and ETag: a small
// object costs that one request. The rest is fetched in parallel ranged
// GETs with If-Match on that ETag, and each response's ETag is checked
// too, so every byte written comes from one version of the object.
func (t *s3Transfer) download(ctx context.Context, bucket, key string, dst io.WriterAt) (Attrs, error) {
	out, err := t.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		Range:  aws.String(fmt.Sprintf("bytes=0-%d", t.firstRange()-1)),
	})
	if isCode(err, "InvalidRange") {
		// An empty object has no byte 0 to range over.
		out, err = t.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(bucket),
			Key:    aws.String(key),
		})
	}
	if err != nil {
		return Attrs{}, s3Error(ctx, err, false)
	}
	body := out.Body
	defer func() {
		if body != nil {
			body.Close()
		}
	}()

	a := Attrs{
		Key:      key,
		ETag:     aws.ToString(out.ETag),
		ModTime:  aws.ToTime(out.LastModified),
		Metadata: cloneMetadata(out.Metadata),
	}
	start, end, total, err := contentRange(out)
	if err != nil {
		return Attrs{}, err
	}
	if start != 0 {
		return Attrs{}, fmt.Errorf("GetObject returned bytes from offset %d, asked for 0", start)
	}
	a.Size = total
	if a.ETag == "" && end < total {
		return Attrs{}, errors.New("GetObject returned no ETag: cannot pin the ranges of a large object to one version")
	}

	// Fetch the rest while the first response is copied.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg      sync.WaitGroup
		once    sync.Once
		failure error
	)
	fail := func(err error) {
		once.Do(func() { failure = err; cancel(err) })
	}
	if end < total {
		ranges := make(chan [2]int64)
		for range max(t.concurrency-1, 1) {
			wg.Go(func() {
				for r := range ranges {
					if err := t.fetchRange(ctx, bucket, key, a.ETag, r[0], r[1], nil, dst); err != nil {
						fail(err)
					}
				}
			})
		}
		wg.Go(func() {
			defer close(ranges)
			size := t.rangeSize(total - end)
			for off := end; off < total; off += size {
				select {
				case ranges <- [2]int64{off, min(off+size, total)}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	b := body
	body = nil // fetchRange closes it
	if err := t.fetchRange(ctx, bucket, key, a.ETag, 0, end, b, dst); err != nil {
		fail(err)
	}
	wg.Wait()
	if failure != nil {
		return Attrs{}, failure
	}
	return a, nil
}

const (
	// s3MaxRange caps the ranges picked for downloads when
	// S3Config.PartSize is zero.
	s3MaxRange = 256 << 20
	// s3RangeAttempts is how often a range whose response broke off is
	// requested (for what is missing) before the download fails.
	s3RangeAttempts = 3
)

// firstRange is the size of a download's first ranged GET, the largest
// object a single request fetches.
func (t *s3Transfer) firstRange() int64 {
	if t.partSize > 0 {
		return t.partSize
	}
	if t.threshold > 0 {
		return min(t.threshold, s3MaxPutSize)
	}
	return s3DefaultThreshold
}

// rangeSize is the size of the ranges that the rest bytes after the
// first range are fetched in: S3Config.PartSize if set, or about two
// ranges per worker, within [64 MiB, 256 MiB]. Every request has a cost
// (billing, and latency before its first byte), so ranges are only as
// small as the parallelism needs.
func (t *s3Transfer) rangeSize(rest int64) int64 {
	if t.partSize > 0 {
		return t.partSize
	}
	per := 2 * int64(t.concurrency)
	return min(max((rest+per-1)/per, s3DefaultPartSize), s3MaxRange)
}

// fetchRange writes bytes [off, end) of the version etag of the object
// into dst, reading body first if it is not nil (the open response to a
// GET of that range), and closing it. If a response breaks off, the
// bytes still missing are requested again, pinned to the same version.
func (t *s3Transfer) fetchRange(ctx context.Context, bucket, key, etag string, off, end int64,
	body io.ReadCloser, dst io.WriterAt,
) error {
	for attempt := 1; ; attempt++ {
		if body == nil {
			var err error
			if body, err = t.openRange(ctx, bucket, key, etag, off, end); err != nil {
				return err
			}
		}
		n, err := copyBody(dst, off, body, end-off)
		body.Close()
		body = nil
		off += n
		if err == nil {
			return nil
		}
		var de *dstError
		if ctx.Err() != nil || attempt == s3RangeAttempts || errors.As(err, &de) || etag == "" {
			return s3BodyError(ctx, err)
		}
		// The connection broke off: ask for the rest of the range again.
	}
}

// openRange sends a GET of bytes [off, end) of the version etag of the
// object, and returns the response body once it has checked the response
// is that.
func (t *s3Transfer) openRange(ctx context.Context, bucket, key, etag string, off, end int64) (io.ReadCloser, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	out, err := t.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket:  aws.String(bucket),
		Key:     aws.String(key),
		Range:   aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1)),
		IfMatch: aws.String(etag),
	})
	if err != nil {
		err = s3Error(ctx, err, false)
		if errors.Is(err, ErrPrecondition) {
			return nil, fmt.Errorf("object changed during download: %w", err)
		}
		return nil, err
	}
	if got := aws.ToString(out.ETag); got != "" && got != etag {
		// A service that ignores If-Match on GET.
		out.Body.Close()
		return nil, fmt.Errorf("%w: object changed during download (ETag %s, then %s)", ErrPrecondition, etag, got)
	}
	start, stop, _, err := contentRange(out)
	if err == nil && (start != off || stop != end) {
		err = fmt.Errorf("GetObject returned bytes %d-%d, asked for %d-%d", start, stop-1, off, end-1)
	}
	if err != nil {
		out.Body.Close()
		return nil, err
	}
	return out.Body, nil
}

// contentRange returns the byte range [start, end) a GetObject response
// holds and the object's total size. A response without Content-Range
// holds the whole object.
func contentRange(out *s3.GetObjectOutput) (start, end, total int64, err error) {
	n := aws.ToInt64(out.ContentLength)
	cr := aws.ToString(out.ContentRange)
	if cr == "" {
		return 0, n, n, nil
	}
	bad := func() (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("GetObject: malformed Content-Range %q", cr)
	}
	// bytes START-LAST/TOTAL
	spec, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return bad()
	}
	rng, size, ok := strings.Cut(spec, "/")
	if !ok {
		return bad()
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad()
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return bad()
	}
	if end, err = strconv.ParseInt(last, 10, 64); err != nil {
		return bad()
	}
	if total, err = strconv.ParseInt(size, 10, 64); err != nil {
		return bad()
	}
	end++
	if start < 0 || end <= start || end > total || end-start != n {
		return bad()
	}
	return start, end, total, nil
}

// copyBody writes n bytes of body into dst from offset off on, and
// returns how many it wrote: n, or fewer and an error. An error of dst
// is a *dstError: the body is not to blame for it.
func copyBody(dst io.WriterAt, off int64, body io.Reader, n int64) (int64, error) {
	buf := make([]byte, min(n, s3CopyBuffer))
	var w int64
	for w < n {
		m, err := body.Read(buf[:min(int64(len(buf)), n-w)])
		if m > 0 {
			if _, werr := dst.WriteAt(buf[:m], off+w); werr != nil {
				return w, &dstError{off: off + w, err: werr}
			}
			w += int64(m)
		}
		if err != nil {
			if err == io.EOF {
				if w == n {
					break
				}
				err = io.ErrUnexpectedEOF
			}
			return w, fmt.Errorf("read object at offset %d: %w", off+w, err)
		}
	}
	return w, nil
}

// dstError is a failed write to a download's destination.
type dstError struct {
	off int64
	err error
}

func (e *dstError) Error() string { return fmt.Sprintf("write at offset %d: %v", e.off, e.err) }
func (e *dstError) Unwrap() error { return e.err }

// s3BodyError makes sure an error reading a response body that ctx's end
// caused says so.
func s3BodyError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}
