// Replica shows read replicas: one writer process and two replica
// processes share nothing but a bucket. The writer adds a row and flushes
// (sync=log: one small delta per flush); each replica (replica=true)
// follows the writer's log on its own and prints what its queries see,
// with its sequence and how long ago the writer flushed that state.
//
// Run it from any directory; it needs no credentials and no server:
//
//	go run ./examples/replica
//
// The program starts itself three times, as the writer and as the two
// replicas, and prints their lines as they come. By default the bucket is
// the directory data/bucket, relative to the current directory, and the
// database is the object replica.db in it. Set BUCKETSQLITE_DSN to use
// another bucket, for example S3 (credentials come from the standard AWS
// environment variables):
//
//	BUCKETSQLITE_DSN='s3://my-bucket/replica.db?region=eu-west-1' go run ./examples/replica
package main
