// Quickstart is the smallest bucketsqlite program: it opens a database
// kept in a bucket, adds a row, lists the rows and closes, which flushes
// the database back to the bucket. Each run continues where the last one
// stopped.
//
// Run it from any directory; it needs no credentials and no server:
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart   # again: the first visit is still there
//
// By default the bucket is a directory, data/bucket, relative to the
// current directory, and the database is the object quickstart.db in it.
// Set BUCKETSQLITE_DSN to use another bucket, for example S3 (credentials
// come from the standard AWS environment variables, never from the DSN):
//
//	BUCKETSQLITE_DSN='s3://my-bucket/quickstart.db?region=eu-west-1' go run ./examples/quickstart
package main
