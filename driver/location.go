//go:build cgo

package driver

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/buckethead/bucketsqlite/bucket"
)

// openBucket returns the connector's bucket and an identity for the
// in-process registry: two connectors with the same identity would write
// the same snapshot. cfg is normalized.
func openBucket(cfg *Config, o *options) (bucket.Bucket, string, error) {
	if o.bucket != nil {
		return o.bucket, fmt.Sprintf("%T@%p\x00%s", o.bucket, o.bucket, cfg.Key), nil
	}
	u := cfg.Bucket
	ctx := context.Background()
	switch u.Scheme {
	case "":
		return nil, "", dsnErr("bucket", "none: set Config.Bucket or use WithBucket")
	case "s3":
		s3cfg := u.S3Config()
		s3cfg.AWSConfig = o.awsConfig
		endpoint := u.Endpoint
		if o.s3Client != nil {
			// The client carries its own endpoint, region and credentials.
			s3cfg = bucket.S3Config{Bucket: u.Bucket, Client: o.s3Client}
			endpoint = aws.ToString(o.s3Client.Options().BaseEndpoint)
		}
		b, err := bucket.NewS3(ctx, s3cfg)
		if err != nil {
			return nil, "", fmt.Errorf("bucketsqlite: %w", err)
		}
		id := "s3://" + u.Bucket + "@" + endpoint + "\x00" + u.Prefix + cfg.Key
		return bucket.WithPrefix(b, u.Prefix), id, nil
	}
	b, err := u.Open(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("bucketsqlite: %w", err)
	}
	if d, ok := b.(*bucket.Dir); ok {
		// NewDir made the directory and resolved its symbolic links: one
		// directory spelled two ways is one bucket.
		return b, "file://" + d.Root() + "\x00" + cfg.Key, nil
	}
	return b, u.String() + "\x00" + cfg.Key, nil
}

// bucketName names cfg's bucket in the sync record beside a persistent
// working copy, which must not belong to another database.
// It leaves out the S3 settings (endpoint, region, ...), so that records
// written before they were part of the location still match.
func bucketName(cfg *Config) string { return cfg.location() }

// location names cfg's database, its bucket and key, for messages.
func location(cfg *Config) string {
	if cfg.location() == "" {
		return fmt.Sprintf("%q", cfg.Key)
	}
	return cfg.location() + "/" + cfg.Key
}
