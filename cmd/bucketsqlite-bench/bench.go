package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// bench is one run of the command: a server, a bucket, seeded databases.
type bench struct {
	cfg    *config
	log    io.Writer
	srv    *s3test.Server
	client *s3.Client
	bucket string
	bk     *bucket.S3
	dir    string
	ownDir bool
	seeds  map[int64]*seedDB
	keys   int // keys handed out by newKey
}

const benchBucket = "bench"

func newBench(ctx context.Context, cfg *config, log io.Writer) (_ *bench, err error) {
	b := &bench{cfg: cfg, log: log, bucket: benchBucket, seeds: map[int64]*seedDB{}}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	b.dir = cfg.dir
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "bucketsqlite-bench-*"); err != nil {
			return nil, err
		}
		b.ownDir = true
	} else if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return nil, err
	}
	b.logf("starting versitygw")
	if b.srv, err = s3test.StartServer(ctx); err != nil {
		return nil, err
	}
	if err := b.srv.CreateBucket(ctx, b.bucket); err != nil {
		return nil, err
	}
	b.client = b.srv.Client()
	if b.bk, err = bucket.NewS3(ctx, bucket.S3Config{Bucket: b.bucket, Client: b.client}); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	if b.srv != nil {
		b.srv.Close()
	}
	if b.ownDir {
		os.RemoveAll(b.dir)
	}
}

// logf reports progress on the log (stderr), never on the table's output.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bucketsqlite-bench: "+format+"\n", args...)
}

func (b *bench) sizeName(n int64) string { return formatSize(n) }

// prepare builds and uploads every seeded database the scenarios use.
func (b *bench) prepare(ctx context.Context) error {
	for _, size := range []int64{b.cfg.small, b.cfg.size, b.cfg.large} {
		if size == 0 {
			continue
		}
		if _, err := b.prepareSeed(ctx, size); err != nil {
			return err
		}
	}
	return nil
}

// rssSize is the size the peak-RSS rows are measured at.
func (b *bench) rssSize() int64 {
	if b.cfg.large > 0 {
		return b.cfg.large
	}
	return b.cfg.size
}

// newKey copies the seeded snapshot of target bytes, on the server, to a
// fresh key, so that each scenario has a database of its own.
func (b *bench) newKey(ctx context.Context, target int64, what string) (string, error) {
	b.keys++
	key := fmt.Sprintf("%s-%d.db", what, b.keys)
	_, err := b.bk.Copy(ctx, b.seeds[target].key, key, bucket.CopyOptions{})
	return key, err
}

// sqlitePragmas are the go-sqlite3 parameters both sides of the insert
// scenario use, and every driver database here: WAL, synchronous=NORMAL,
// busy_timeout (bucketsqlite's defaults, spelled out).
var sqlitePragmas = url.Values{
	"_journal_mode": {"WAL"},
	"_synchronous":  {"NORMAL"},
	"_busy_timeout": {"5000"},
}

// openDB opens a bucketsqlite database on key through the bench's S3
// client, with no background flushes and the DSN parameters in params
// (keep_previous=false unless they say otherwise), and restores it (Ping).
func (b *bench) openDB(ctx context.Context, key string, params url.Values) (*sql.DB, error) {
	c, err := b.connector(key, params)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (b *bench) connector(key string, params url.Values) (*driver.Connector, error) {
	cfg, err := driver.ParseDSN(b.dsn(key, params))
	if err != nil {
		return nil, err
	}
	return driver.NewConnector(cfg, driver.WithS3Client(b.client))
}

// dsn is key's DSN, with params on top of the bench's defaults; the
// credentials come from the environment.
func (b *bench) dsn(key string, params url.Values) string {
	q := url.Values{}
	for k, v := range sqlitePragmas {
		q[k] = v
	}
	q.Set("endpoint", b.srv.Endpoint)
	q.Set("region", b.srv.Region)
	q.Set("path_style", "true")
	q.Set("flush_interval", "0")
	q.Set("keep_previous", "false")
	for k, v := range params {
		q[k] = v
	}
	return "s3://" + b.bucket + "/" + key + "?" + q.Encode()
}

// plainPut uploads the file at path with one PutObject through the bench's
// client: the baseline of a flush.
func (b *bench) plainPut(ctx context.Context, path, key string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(key),
		Body:          f,
		ContentLength: aws.Int64(st.Size()),
	})
	return err
}

// plainCopy copies src to dst on the server with one CopyObject, as
// keep_previous does before an upload (the object at src must exist).
func (b *bench) plainCopy(ctx context.Context, src, dst string) error {
	_, err := b.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     aws.String(b.bucket),
		Key:        aws.String(dst),
		CopySource: aws.String(b.bucket + "/" + src),
	})
	return err
}

// plainGet downloads key into a new file at path with one GetObject.
func (b *bench) plainGet(ctx context.Context, key, path string) error {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, out.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// tempPath is a fresh path in the work directory; nothing is there yet.
func (b *bench) tempPath(name string) string {
	b.keys++
	p := filepath.Join(b.dir, fmt.Sprintf("%s-%d.db", name, b.keys))
	removeDB(p)
	return p
}

// removeDB removes a database file and its side files.
func removeDB(path string) {
	for _, side := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + side)
	}
}

// timed returns how long f took.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}
