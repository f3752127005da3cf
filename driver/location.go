//go:build cgo

package driver

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/buckethead/bucketsqlite/bucket"
)

// openBucket returns the connector's bucket and an identity for the
// in-process registry.
func openBucket(cfg *Config, o *options) (bucket.Bucket, string, error) {
	if o.bucket != nil {
		return o.bucket, fmt.Sprintf("%T@%p\x00%s", o.bucket, o.bucket, cfg.Key), nil
	}
	if cfg.Bucket == "" {
		return nil, "", dsnErr("bucket", "no bucket: set Config.Bucket or use WithBucket")
	}
	u, err := url.Parse(cfg.Bucket)
	if err != nil {
		return nil, "", dsnErr("bucket", "not a URL")
	}
	ctx := context.Background()
	switch u.Scheme {
	case "s3":
		s3cfg := bucket.S3Config{
			Bucket:    u.Host,
			Endpoint:  cfg.Endpoint,
			Region:    cfg.Region,
			PathStyle: cfg.PathStyle,
			Profile:   cfg.Profile,
			AWSConfig: o.awsConfig,
		}
		if o.s3Client != nil {
			// The client carries its own endpoint, region and credentials.
			s3cfg = bucket.S3Config{Bucket: u.Host, Client: o.s3Client}
		}
		b, err := bucket.NewS3(ctx, s3cfg)
		if err != nil {
			return nil, "", fmt.Errorf("bucketsqlite: %w", err)
		}
		return b, "s3://" + u.Host + "@" + cfg.Endpoint + "\x00" + cfg.Key, nil
	case "file":
		dir := u.Path
		if u.Opaque != "" {
			dir, _ = url.PathUnescape(u.Opaque)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, "", dsnErr("bucket", "%v", err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, "", fmt.Errorf("bucketsqlite: directory bucket: %w", err)
		}
		b, err := bucket.NewDir(abs)
		if err != nil {
			return nil, "", fmt.Errorf("bucketsqlite: %w", err)
		}
		return b, "file://" + abs + "\x00" + cfg.Key, nil
	case "mem":
		return bucket.Mem(u.Host), "mem://" + u.Host + "\x00" + cfg.Key, nil
	}
	return nil, "", dsnErr("bucket", "unsupported scheme %q", u.Scheme)
}

// bucketName names cfg's bucket in the sync record beside a persistent
// working copy, which must not belong to another database.
func bucketName(cfg *Config) string { return cfg.Bucket }

// location names cfg's database, its bucket and key, for messages.
func location(cfg *Config) string {
	if cfg.Bucket == "" {
		return fmt.Sprintf("%q", cfg.Key)
	}
	return cfg.Bucket + "/" + cfg.Key
}
