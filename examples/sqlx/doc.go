// Sqlx uses a bucketsqlite database through github.com/jmoiron/sqlx:
// struct scanning, named parameters and a transaction. Each run records a
// visit with a note and lists the visits that share its note.
//
// Run it from any directory; by default the bucket is the directory
// data/bucket under the current directory:
//
//	go run ./examples/sqlx -note hello
//	go run ./examples/sqlx -note world
//	go run ./examples/sqlx -note hello   # lists visits 1 and 3
//
// -dsn selects another bucket, such as s3://my-bucket/sqlx.db (credentials
// from the standard AWS environment variables).
package main
