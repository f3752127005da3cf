//go:build cgo

package driver

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Option configures a Connector with what a DSN cannot carry.
type Option func(*options)

type options struct {
	bucket    bucket.Bucket
	s3Client  *s3.Client
	awsConfig *aws.Config
	logger    *slog.Logger
}

// WithBucket stores snapshots in b instead of the bucket named by
// Config.Bucket (which may then be the zero bucket.URL).
func WithBucket(b bucket.Bucket) Option { return func(o *options) { o.bucket = b } }

// WithS3Client makes an s3:// bucket use client, with its credentials,
// region and endpoint, instead of building one from the AWS environment;
// the DSN's endpoint, region, path_style and profile are then ignored.
func WithS3Client(client *s3.Client) Option { return func(o *options) { o.s3Client = client } }

// WithAWSConfig makes an s3:// bucket build its client from cfg instead of
// loading the default AWS configuration.
func WithAWSConfig(cfg aws.Config) Option { return func(o *options) { o.awsConfig = &cfg } }

// WithLogger logs restores, flushes and their failures to l. The default
// logs nothing. Messages never contain credentials.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }
