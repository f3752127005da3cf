package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Upload an object, fail to overwrite it on a stale condition, and list
// the bucket.
func Example() {
	ctx := context.Background()
	b := bucket.NewMemory()

	content := "SQLite format 3..."
	first, err := b.Upload(ctx, "db/snapshot", strings.NewReader(content), int64(len(content)),
		bucket.WriteOptions{IfNoneMatch: true, Metadata: map[string]string{"generation": "1"}})
	if err != nil {
		panic(err)
	}
	fmt.Println("uploaded", first.Key, first.Size, "bytes")

	// A second writer that also believes the key is free loses.
	_, err = b.Upload(ctx, "db/snapshot", strings.NewReader("other"), 5, bucket.WriteOptions{IfNoneMatch: true})
	fmt.Println("second create:", errors.Is(err, bucket.ErrPrecondition))

	// Replacing what we read succeeds once; the old ETag is then stale.
	newer := "SQLite format 3, newer"
	_, err = b.Upload(ctx, "db/snapshot", strings.NewReader(newer), int64(len(newer)),
		bucket.WriteOptions{IfMatch: first.ETag, Metadata: map[string]string{"generation": "2"}})
	fmt.Println("replace with current ETag:", err)
	_, err = b.Upload(ctx, "db/snapshot", strings.NewReader("lost update"), 11,
		bucket.WriteOptions{IfMatch: first.ETag})
	fmt.Println("replace with stale ETag:", errors.Is(err, bucket.ErrPrecondition))

	if _, err := b.Copy(ctx, "db/snapshot", "db/backup", bucket.CopyOptions{}); err != nil {
		panic(err)
	}
	objects, err := bucket.ListAll(ctx, b, "db/")
	if err != nil {
		panic(err)
	}
	for _, o := range objects {
		a, _ := b.Stat(ctx, o.Key)
		fmt.Println(o.Key, o.Size, "generation", a.Metadata["generation"])
	}
	// Output:
	// uploaded db/snapshot 18 bytes
	// second create: true
	// replace with current ETag: <nil>
	// replace with stale ETag: true
	// db/backup 22 generation 2
	// db/snapshot 22 generation 2
}

// Errors name the operation and the key; errors.Is tells what happened.
func ExampleError() {
	_, err := bucket.NewMemory().Stat(context.Background(), "missing")
	fmt.Println(err)
	fmt.Println(errors.Is(err, bucket.ErrNotFound))

	var be *bucket.Error
	if errors.As(err, &be) {
		fmt.Println(be.Op, be.Key)
	}
	// Output:
	// bucket: stat "missing": object not found
	// true
	// stat missing
}

// Open a bucket from a URL. A mem:// URL names a memory bucket shared
// through the process, here with a prefix.
func ExampleOpen() {
	ctx := context.Background()
	defer bucket.ForgetMem("example")

	b, err := bucket.Open(ctx, "mem://example/tenant-a")
	if err != nil {
		panic(err)
	}
	if _, err := b.Upload(ctx, "db", strings.NewReader("data"), 4, bucket.WriteOptions{}); err != nil {
		panic(err)
	}
	all, _ := bucket.ListAll(ctx, bucket.Mem("example"), "")
	fmt.Println(all[0].Key)
	// Output:
	// tenant-a/db
}

// Parse a URL, and turn it back into a string.
func ExampleParseURL() {
	u, err := bucket.ParseURL("s3://my-bucket/db/prod?endpoint=http://127.0.0.1:9000&path_style=true")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Bucket, u.Prefix, u.Endpoint, u.PathStyle)
	fmt.Println(u)

	_, err = bucket.ParseURL("s3://AKIAEXAMPLE:secret@my-bucket")
	fmt.Println(err)
	// Output:
	// my-bucket db/prod/ http://127.0.0.1:9000 true
	// s3://my-bucket/db/prod/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true
	// invalid bucket URL: url: credentials (user information) do not belong in a bucket URL; for S3 use the environment or profile=
}

// A prefixed view keeps one tenant's keys apart from another's.
func ExampleWithPrefix() {
	ctx := context.Background()
	shared := bucket.NewMemory()
	a := bucket.WithPrefix(shared, "tenant-a/")
	b := bucket.WithPrefix(shared, "tenant-b/")
	a.Upload(ctx, "db", strings.NewReader("A"), 1, bucket.WriteOptions{})
	b.Upload(ctx, "db", strings.NewReader("B"), 1, bucket.WriteOptions{})

	inA, _ := bucket.ListAll(ctx, a, "")
	fmt.Println(len(inA), inA[0].Key)
	inShared, _ := bucket.ListAll(ctx, shared, "")
	fmt.Println(inShared[0].Key, inShared[1].Key)
	// Output:
	// 1 db
	// tenant-a/db tenant-b/db
}
