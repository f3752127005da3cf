// Package bucket stores the objects a bucketsqlite database lives in: an
// interface, [Bucket], small enough that every storage can implement all of
// it, and three implementations of it, for S3, a local directory and
// process memory. It stands alone: nothing in it knows about SQLite.
//
// # The contract
//
// A Bucket is a flat namespace of immutable objects. Each object has a key,
// its content, a little metadata (string pairs) and an ETag, an opaque
// string that changes when the object does. You replace an object by
// uploading a new one under its key; you never modify one in place.
//
// Keys are checked by [ValidateKey] before any I/O, by every backend alike,
// so that a database can move from one backend to another: they are
// relative slash-separated paths like "db/prod/snapshot", without empty,
// "." or ".." segments, backslashes or control characters, and at most
// [MaxKeyLen] bytes long.
//
// Writes are atomic. A reader sees the previous object or the new one,
// never a mix, and until [Bucket.Upload] or [Bucket.Copy] returns nil the
// previous object is intact: a failed upload, or one whose context is
// cancelled midway, leaves it as it was.
//
// Writes can be conditional, which is how two writers avoid overwriting
// each other's work (optimistic concurrency):
//
//   - [WriteOptions.IfNoneMatch] writes only if no object is at the key:
//     "create, unless someone else already has".
//   - [WriteOptions.IfMatch] writes only if the object at the key still
//     has the ETag you saw: "replace what I read, unless it changed".
//   - [CopyOptions.IfSourceMatch] copies only the version of the source
//     you saw.
//
// A condition that does not hold changes nothing and returns an error
// matching [ErrPrecondition]. Reading is [Bucket.Stat] (attributes only),
// [Bucket.Download] (into an io.WriterAt, possibly in parallel ranges) and
// [Bucket.List] (a page of keys under a prefix, in lexical order; see
// [ListAll] to follow the pages).
//
// Every implementation is safe for concurrent use, and the conformance
// suite in package buckettest holds each of them to the contract.
//
// # Backends
//
// [S3] ([NewS3]) keeps objects in an S3 bucket, on AWS or an S3-compatible
// service; conditions are enforced by the server.
//
// [Dir] ([NewDir]) keeps them as files under a local directory: the object
// at key "db/app.db" is the file DIR/db/app.db, holding exactly the
// object's content, so a snapshot there is a SQLite database that sqlite3
// opens in place, and a file copied into the directory is an object. The
// ETag and metadata live beside it in a hidden sidecar,
// DIR/db/.bucketsqlite.app.db.meta, which describes one version of the
// file: a file replaced or edited by other means reads as an object
// without metadata, with an ETag computed from its content. Writes go to
// temporary files renamed into place; conditional writes are serialised
// by a lock file, so several processes can share one directory.
//
// [Memory] ([NewMemory]) keeps them in process memory, for tests and
// examples. [Mem] returns a memory bucket by name, the same one for every
// caller in the process, so that a test can look into the bucket a
// database/sql handle opened through a mem:// URL writes to.
//
// # URLs
//
// [Open] opens a bucket from a URL string, such as a connection string
// carries; [ParseURL] and [URL.String] convert between the string and a
// [URL]:
//
//	s3://my-bucket                                   an AWS S3 bucket
//	s3://my-bucket/db/prod                           keys under "db/prod/"
//	s3://b?endpoint=http://127.0.0.1:9000&path_style=true
//	                                                 a self-hosted service
//	s3://b?endpoint=https://ACCOUNT.r2.cloudflarestorage.com&region=auto
//	                                                 Cloudflare R2
//	s3://b?profile=backup                            credentials of a profile
//	file:///var/lib/app/bucket                       a local directory
//	file:data/bucket                                 relative to the working directory
//	mem://test/db                                    Mem("test"), under "db/"
//
// Credentials never go in a URL: S3 takes them from the environment, the
// shared AWS configuration or the named profile. A URL with user
// information is rejected. Booleans (path_style) are true, 1, yes or on
// and false, 0, no or off, the grammar of every boolean in a bucketsqlite
// DSN. A bad URL is a [*URLError] naming the part at fault. When a URL cannot say what you need (an
// *s3.Client of your own, a part size), use [URL.S3Config], adjust it and
// call [NewS3].
//
// # Errors
//
// Every error from a Bucket is an [*Error] naming the operation and the
// key, and wrapping its cause. Branch on the cause with errors.Is:
//
//	_, err := b.Upload(ctx, "db", r, n, bucket.WriteOptions{IfMatch: etag})
//	switch {
//	case errors.Is(err, bucket.ErrPrecondition):
//		// Someone else wrote "db" since we read it: reload and retry.
//	case errors.Is(err, bucket.ErrNotFound):
//		// Only Stat, Download and Copy (a missing source) report this.
//	case errors.Is(err, bucket.ErrInvalidKey):
//		// A bug in the caller: the key breaks ValidateKey's rules.
//	case errors.Is(err, context.Canceled):
//		// ctx was cancelled; nothing was written.
//	case err != nil:
//		// Anything else: network, permissions, a full disk.
//	}
//
// A missing object is always [ErrNotFound], whatever shape the storage
// reports it in (an S3 404, a missing file). [ErrInvalidMetadata] and
// [ErrInvalidURL] report bad metadata and bad URLs.
//
// # Prefixes
//
// [WithPrefix] gives a view of a bucket in which every key starts with a
// fixed prefix, so that several databases (or tenants, or test runs) can
// share one bucket without seeing each other's objects:
//
//	prod := bucket.WithPrefix(b, "db/prod/")
//	prod.Upload(ctx, "snapshot", r, n, opts) // stored as "db/prod/snapshot"
//
// List takes and returns keys without the prefix, and errors name the
// caller's key. Open applies the prefix of an s3:// or mem:// URL this way.
package bucket
