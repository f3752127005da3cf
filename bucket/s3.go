package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3 is a Bucket in an S3 bucket: AWS S3 or an S3-compatible service
// (Cloudflare R2, Backblaze B2, MinIO, Ceph, versitygw, ...). Make one with
// NewS3, which shows the configurations for AWS, R2 and MinIO.
//
// # Requests
//
// Every call is one or a few billed requests. Stat is a HEAD. A Download
// of an object up to one part is a single GET; larger ones add parallel
// ranged GETs. An Upload up to the multipart threshold is a single PUT;
// a larger one is a multipart upload (create, one request per part,
// complete). Copy is a HEAD of the source and a server-side COPY. List is
// one LIST request per page; Delete is one DELETE.
//
// # Conditions and consistency
//
// Conditions are enforced by the service with If-Match and If-None-Match
// headers, on multipart uploads too (on CompleteMultipartUpload, after
// the parts were sent), so they need a service that supports conditional
// writes: AWS S3 (since 2024), R2, recent MinIO and versitygw do. A
// service that ignores the headers silently turns conditional writes into
// plain ones.
//
// A large Download pins its ranged GETs to the ETag of the first response
// (If-Match): if the object is overwritten meanwhile, the download fails
// with an error matching ErrPrecondition rather than mixing two versions;
// download again. A response that breaks off is resumed, for the bytes
// still missing, a few times before the download fails.
//
// ETags are returned as the service sends them, with their quotes.
//
// # Leftovers
//
// A failed or cancelled multipart upload is aborted, but a process that
// dies in the middle of one leaves its parts stored, and billed, without
// any object to show for them. Give the bucket a lifecycle rule that
// aborts incomplete multipart uploads after a day
// (AbortIncompleteMultipartUpload).
type S3 struct {
	client *s3.Client
	bucket string
	xfer   s3Transfer
}

var _ Bucket = (*S3)(nil)

// S3Config configures NewS3. Only Bucket is required: by default the
// client comes from the standard AWS configuration chain (environment,
// shared config and credentials files, SSO, instance roles), as the AWS
// CLI finds it.
//
// Credentials are never part of S3Config: they come from that chain
// (optionally a named Profile), from AWSConfig or from Client.
type S3Config struct {
	// Bucket is the name of the S3 bucket.
	Bucket string

	// Endpoint is the URL of an S3-compatible service, such as
	// https://ACCOUNT.r2.cloudflarestorage.com or http://127.0.0.1:9000.
	// Empty means AWS S3. With an Endpoint, request checksums are sent and
	// response checksums checked only where an operation requires them:
	// the SDK's default CRC32 checksums break many S3-compatible services.
	Endpoint string

	// Region is the bucket's region; "auto" for Cloudflare R2. Empty takes
	// it from the AWS configuration chain (AWS_REGION, the profile), or
	// "us-east-1" when an Endpoint is set and the chain has none.
	Region string

	// Profile is the shared configuration profile to load, as with
	// AWS_PROFILE. Empty means the chain's default.
	Profile string

	// PathStyle addresses the bucket in the URL path (ENDPOINT/BUCKET/KEY)
	// instead of the host name (BUCKET.ENDPOINT/KEY). MinIO, versitygw and
	// most self-hosted services need it.
	PathStyle bool

	// Client, if set, is used as is, and Endpoint, Region, Profile,
	// PathStyle, AWSConfig and ClientOptions must be empty. Configure its
	// checksum behaviour for the service yourself.
	Client *s3.Client

	// AWSConfig, if set, replaces loading the AWS configuration chain;
	// Region, Endpoint and PathStyle still apply on top of it, Profile must
	// be empty.
	AWSConfig *aws.Config

	// ClientOptions are applied last to the client NewS3 builds, for what
	// the fields above cannot say (a retryer, an HTTP client, logging).
	ClientOptions []func(*s3.Options)

	// PartSize is the size of the parts of a multipart upload and of the
	// ranges of a parallel download, at least 5 MiB (S3's minimum part
	// size). Zero sizes them for each object, as large as is useful,
	// because every part and range is a billed request: upload parts of
	// max(64 MiB, size/10000), so that the largest objects still fit S3's
	// 10,000 parts; download ranges of about two per concurrent request,
	// between 64 and 256 MiB.
	PartSize int64

	// MultipartThreshold is the largest object moved in one request: an
	// Upload up to it is a single PutObject, a Download a single GetObject;
	// larger objects move in parts. Zero means PartSize when that is set,
	// and 512 MiB otherwise. It is capped at 5 GiB, the largest single
	// PutObject.
	MultipartThreshold int64

	// Concurrency is how many parts of one upload or ranges of one
	// download are in flight at once. Zero means 5.
	Concurrency int
}

// Limits of S3 itself.
const (
	s3MinPartSize = 5 << 20 // smallest part but the last of a multipart upload
	s3MaxPutSize  = 5 << 30 // largest single PutObject or part
	s3MaxParts    = 10000   // most parts of a multipart upload
)

// NewS3 returns the S3 bucket cfg describes. It makes no request: a missing
// bucket or bad credentials show up on the first operation.
//
// With AWS, credentials and region come from the usual chain:
//
//	b, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: "my-bucket"})
//
// Cloudflare R2 needs its account endpoint and the region "auto"
// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a
// profile holding an R2 API token):
//
//	b, err := bucket.NewS3(ctx, bucket.S3Config{
//		Bucket:   "my-bucket",
//		Endpoint: "https://ACCOUNT_ID.r2.cloudflarestorage.com",
//		Region:   "auto",
//	})
//
// MinIO, versitygw and most self-hosted services want path-style
// addressing:
//
//	b, err := bucket.NewS3(ctx, bucket.S3Config{
//		Bucket:    "my-bucket",
//		Endpoint:  "http://127.0.0.1:9000",
//		PathStyle: true,
//	})
//
// Errors never contain credentials.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	bad := func(format string, args ...any) (*S3, error) {
		return nil, fmt.Errorf("bucket: s3 config: "+format, args...)
	}
	switch {
	case cfg.Bucket == "":
		return bad("no bucket name")
	case cfg.PartSize != 0 && (cfg.PartSize < s3MinPartSize || cfg.PartSize > s3MaxPutSize):
		return bad("part size %d is outside S3's limits [5 MiB, 5 GiB]", cfg.PartSize)
	case cfg.MultipartThreshold < 0:
		return bad("negative multipart threshold %d", cfg.MultipartThreshold)
	case cfg.Concurrency < 0:
		return bad("negative concurrency %d", cfg.Concurrency)
	}
	client := cfg.Client
	if client != nil {
		if cfg.Endpoint != "" || cfg.Region != "" || cfg.Profile != "" || cfg.PathStyle ||
			cfg.AWSConfig != nil || len(cfg.ClientOptions) > 0 {
			return bad("Client excludes Endpoint, Region, Profile, PathStyle, AWSConfig and ClientOptions")
		}
	} else {
		var err error
		if client, err = newS3Client(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return &S3{
		client: client,
		bucket: cfg.Bucket,
		xfer:   newS3Transfer(client, cfg),
	}, nil
}

// newS3Client builds the client for a cfg without Client.
func newS3Client(ctx context.Context, cfg S3Config) (*s3.Client, error) {
	if cfg.Endpoint != "" {
		ep, err := url.Parse(cfg.Endpoint)
		switch {
		case err != nil:
			// url.Error repeats the input, which may hold user information.
			return nil, errors.New("bucket: s3 config: endpoint is not a URL")
		case ep.User != nil:
			return nil, errors.New("bucket: s3 config: endpoint must not contain credentials")
		case ep.Scheme != "http" && ep.Scheme != "https" || ep.Host == "":
			return nil, fmt.Errorf("bucket: s3 config: endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]",
				ep.Redacted())
		}
	}
	var awsCfg aws.Config
	if cfg.AWSConfig != nil {
		if cfg.Profile != "" {
			return nil, errors.New("bucket: s3 config: AWSConfig excludes Profile")
		}
		awsCfg = cfg.AWSConfig.Copy()
		if cfg.Region != "" {
			awsCfg.Region = cfg.Region
		}
	} else {
		var opts []func(*config.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, config.WithRegion(cfg.Region))
		}
		if cfg.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
		}
		var err error
		if awsCfg, err = config.LoadDefaultConfig(ctx, opts...); err != nil {
			return nil, fmt.Errorf("bucket: s3 config: load AWS configuration: %w", err)
		}
	}
	// An endpoint can also come from the environment or the shared
	// config (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, endpoint_url): it is
	// a custom endpoint all the same.
	_, envS3 := os.LookupEnv("AWS_ENDPOINT_URL_S3")
	custom := cfg.Endpoint != "" || awsCfg.BaseEndpoint != nil || envS3
	if awsCfg.Region == "" {
		if !custom {
			return nil, errors.New("bucket: s3 config: no region: set Region, AWS_REGION or a profile's region")
		}
		awsCfg.Region = "us-east-1" // what most S3-compatible services expect
	}
	opts := []func(*s3.Options){func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if custom || o.BaseEndpoint != nil {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}}
	return s3.NewFromConfig(awsCfg, append(opts, cfg.ClientOptions...)...), nil
}

// Client returns the S3 client, for what the Bucket interface does not
// cover (bucket policies, lifecycle rules, presigned URLs).
func (b *S3) Client() *s3.Client { return b.client }

// Bucket returns the S3 bucket's name.
func (b *S3) Bucket() string { return b.bucket }

// Stat implements Bucket with one HeadObject request.
func (b *S3) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, wrap("stat", key, err)
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return Attrs{}, wrap("stat", key, s3Error(ctx, err, false))
	}
	return Attrs{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		ETag:     aws.ToString(out.ETag),
		ModTime:  aws.ToTime(out.LastModified),
		Metadata: cloneMetadata(out.Metadata),
	}, nil
}

// Download implements Bucket. The first ranged GET returns the object's
// ETag; the rest of a large object is fetched in parallel ranged GETs that
// carry If-Match with that ETag, so an object overwritten during the
// download fails it with an error matching ErrPrecondition instead of
// yielding a mix of two versions. An object of up to one part costs a
// single GET.
func (b *S3) Download(ctx context.Context, key string, dst io.WriterAt) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, wrap("download", key, err)
	}
	a, err := b.xfer.download(ctx, b.bucket, key, dst)
	return a, wrap("download", key, err)
}

// Upload implements Bucket: a single PutObject up to the multipart
// threshold, a multipart upload above it, its parts read concurrently
// from src. A failed or cancelled multipart upload is aborted, so that
// its parts are not stored (and billed); the previous object stays.
// The returned ModTime is the Date of the service's last response, which
// can differ slightly from the LastModified that Stat reports later (S3
// dates a multipart object from the start of its upload).
func (b *S3) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts WriteOptions) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	if err := ValidateMetadata(opts.Metadata); err != nil {
		return Attrs{}, wrap("upload", key, err)
	}
	if size < 0 {
		return Attrs{}, wrap("upload", key, fmt.Errorf("negative size %d", size))
	}
	if size > 0 && src == nil {
		return Attrs{}, wrap("upload", key, errors.New("nil source"))
	}
	a, err := b.xfer.upload(ctx, b.bucket, key, src, size, opts)
	return a, wrap("upload", key, err)
}

// copyAttempts bounds the retries of a Copy whose source changed between
// its HEAD and its COPY, when the caller set no condition of its own.
const copyAttempts = 3

// Copy implements Bucket with a HeadObject of the source, which gives
// the size and metadata to return, and a CopyObject pinned to the version
// that HEAD saw (x-amz-copy-source-if-match). Objects over 5 GiB cannot be
// copied this way; Copy returns an error for them.
//
// With opts.IfSourceMatch the HEAD is skipped: one request. The
// destination conditions are sent as If-Match and If-None-Match on the
// CopyObject request, which AWS S3 enforces and some services ignore (see
// CopyOptions). A service may answer If-Match on a missing destination
// with 404, as AWS does on PutObject: that comes back as ErrNotFound, like
// a missing source.
func (b *S3) Copy(ctx context.Context, src, dst string, opts CopyOptions) (Attrs, error) {
	if err := ValidateKey(src); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	if err := ValidateKey(dst); err != nil {
		return Attrs{}, wrap("copy", src, err)
	}
	for attempt := 1; ; attempt++ {
		a, err := b.copyOnce(ctx, src, dst, opts)
		if err == nil || opts != (CopyOptions{}) || attempt == copyAttempts ||
			!errors.Is(err, ErrPrecondition) {
			return a, wrap("copy", src, err)
		}
		// The source changed between HEAD and COPY; the caller asked for
		// no particular version, so copy the new one.
	}
}

func (b *S3) copyOnce(ctx context.Context, src, dst string, opts CopyOptions) (Attrs, error) {
	a := Attrs{Key: dst}
	etag := opts.IfSourceMatch
	if etag == "" {
		// Pin the version copied, and learn its size and metadata. With
		// IfSourceMatch the caller pinned it already, and the copy costs
		// one request: snapshots copy KEY to KEY.prev on every flush.
		head, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(src),
		})
		if err != nil {
			return Attrs{}, s3Error(ctx, err, false)
		}
		etag = aws.ToString(head.ETag)
		a.Size = aws.ToInt64(head.ContentLength)
		a.Metadata = cloneMetadata(head.Metadata)
		if a.Size > s3MaxPutSize {
			return Attrs{}, fmt.Errorf("source is %d bytes: S3 copies at most 5 GiB in one request", a.Size)
		}
	}
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(b.bucket),
		Key:               aws.String(dst),
		CopySource:        aws.String(b.bucket + "/" + escapeKey(src)),
		CopySourceIfMatch: aws.String(etag),
		MetadataDirective: types.MetadataDirectiveCopy,
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := b.client.CopyObject(ctx, in)
	if err != nil {
		return Attrs{}, s3Error(ctx, err, false)
	}
	if r := out.CopyObjectResult; r != nil {
		a.ETag = aws.ToString(r.ETag)
		a.ModTime = aws.ToTime(r.LastModified)
	}
	if a.ETag == "" {
		return Attrs{}, errors.New("CopyObject returned no ETag")
	}
	return a, nil
}

// Delete implements Bucket with one DeleteObject request.
func (b *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return wrap("delete", key, err)
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		err = s3Error(ctx, err, false)
		// S3 answers 204 for a missing key; some services say 404.
		if errors.Is(err, ErrNotFound) && !isNoSuchBucket(err) {
			return nil
		}
	}
	return wrap("delete", key, err)
}

// List implements Bucket with one ListObjectsV2 request; the page token is
// S3's continuation token.
func (b *S3) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket)}
	if opts.Prefix != "" {
		in.Prefix = aws.String(opts.Prefix)
	}
	if opts.Token != "" {
		in.ContinuationToken = aws.String(opts.Token)
	}
	if opts.PageSize > 0 && opts.PageSize < 1000 {
		in.MaxKeys = aws.Int32(int32(opts.PageSize))
	}
	out, err := b.client.ListObjectsV2(ctx, in)
	if err != nil {
		return ListPage{}, wrap("list", opts.Prefix, s3Error(ctx, err, false))
	}
	page := ListPage{Objects: make([]Attrs, 0, len(out.Contents))}
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, Attrs{
			Key:     aws.ToString(o.Key),
			Size:    aws.ToInt64(o.Size),
			ETag:    aws.ToString(o.ETag),
			ModTime: aws.ToTime(o.LastModified),
		})
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextToken = aws.ToString(out.NextContinuationToken)
		if page.NextToken == "" {
			// Returning no token would end the listing early and silently.
			return ListPage{}, wrap("list", opts.Prefix,
				errors.New("truncated ListObjectsV2 page without a continuation token"))
		}
	}
	return page, nil
}

// s3Error maps an SDK error onto the Bucket contract: missing objects and
// buckets match ErrNotFound, failed conditions ErrPrecondition, the SDK
// error staying in the chain for errors.As. ifMatch says the request
// carried If-Match, which S3 answers with 404 when there is no object to
// match: a failed condition, not a missing object.
func s3Error(ctx context.Context, err error, ifMatch bool) error {
	if err == nil {
		return nil
	}
	code := ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	status := 0
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	var (
		notFound *types.NotFound
		noKey    *types.NoSuchKey
		noBucket *types.NoSuchBucket
	)
	switch {
	case errors.As(err, &noBucket) || code == "NoSuchBucket":
		return fmt.Errorf("%w: no such bucket: %w", ErrNotFound, err)
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed" ||
		code == "ConditionalRequestConflict":
		return fmt.Errorf("%w: %w", ErrPrecondition, err)
	case errors.As(err, &notFound) || errors.As(err, &noKey) || code == "NoSuchKey" || code == "NotFound" ||
		status == http.StatusNotFound && code == "":
		// A 404 with another code (versitygw answers an unknown access
		// key with XAdminUserNotFound) is not a missing object.
		if ifMatch {
			return fmt.Errorf("%w: no object to match (if-match): %w", ErrPrecondition, err)
		}
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if ctxErr := context.Cause(ctx); ctxErr != nil && !errors.Is(err, ctxErr) {
		// Keep errors.Is(err, context.Canceled) true whatever the SDK
		// made of the cancellation.
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return err
}

// isNoSuchBucket reports whether err says the bucket itself is missing.
func isNoSuchBucket(err error) bool {
	var noBucket *types.NoSuchBucket
	return isCode(err, "NoSuchBucket") || errors.As(err, &noBucket)
}

// isCode reports whether err is an S3 API error with the given code.
func isCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}

// sameETag compares two ETags, tolerating one of them unquoted.
func sameETag(a, b string) bool {
	return strings.Trim(a, `"`) == strings.Trim(b, `"`)
}

// escapeKey percent-encodes a key for x-amz-copy-source: everything but
// unreserved characters and '/'. Services decode the header differently
// ('+' may become a space), so nothing ambiguous is left unescaped.
func escapeKey(key string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// responseDate returns the Date header of the response behind an SDK
// output's metadata: when the server finished the write, the closest it
// says to the object's modification time without another request. It
// falls back to the local clock.
func responseDate(md middleware.Metadata) time.Time {
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now().Round(0)
}
