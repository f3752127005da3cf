// Package bucketsqlite is a Go database/sql driver that keeps a SQLite
// database in an S3-compatible bucket (AWS S3, Cloudflare R2, any S3 API),
// a local directory or process memory, for machines whose disks vanish.
//
// The driver lives in package driver; import it for its side effect of
// registering "bucketsqlite":
//
//	import _ "github.com/buckethead/bucketsqlite/driver"
//
//	db, err := sql.Open("bucketsqlite", "s3://my-bucket/app.db?region=auto&endpoint=https://ACCOUNT.r2.cloudflarestorage.com")
//
// db.Close is the final flush: defer it and check its error (the driver
// package's documentation shows how).
//
// The layers below it stand on their own: package snapshot restores and
// flushes a SQLite connection to a bucket, and package bucket is the small
// storage interface with its S3, directory and memory backends. Packages
// metrics/bucketprom and metrics/bucketexpvar export the driver's flush
// statistics to Prometheus and expvar. The README covers the DSN,
// durability, costs and benchmarks.
package bucketsqlite
