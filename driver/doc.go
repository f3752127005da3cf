// Package driver is the bucketsqlite database/sql driver: a SQLite
// database whose durable home is a snapshot in an S3-compatible bucket
// (AWS S3, Cloudflare R2, versitygw, ...), a local directory or process
// memory. Importing the package registers the driver as "bucketsqlite".
//
// # Opening a database
//
//	import (
//		"database/sql"
//
//		"github.com/buckethead/bucketsqlite/driver" // registers "bucketsqlite"
//	)
//
//	db, err := sql.Open("bucketsqlite", "s3://my-bucket/apps/todo.db?region=auto&endpoint=https://ACCOUNT.r2.cloudflarestorage.com")
//	if err != nil { ... }
//	defer db.Close() // final flush; check its error in real code
//
// Everything after that is plain database/sql, sqlx or an ORM. Credentials
// come from the standard AWS chain (environment variables, shared config
// and profiles, instance and web-identity roles), never from the DSN.
// ParseDSN documents every parameter; NewConnector with sql.OpenDB takes
// what a string cannot carry:
//
//	cfg, _ := driver.ParseDSN("s3://my-bucket/app.db")
//	c, err := driver.NewConnector(cfg, driver.WithS3Client(client), driver.WithLogger(slog.Default()))
//	db := sql.OpenDB(c)
//
// # Lifecycle
//
// sql.Open makes no request. The first connection restores the latest
// snapshot into a local working copy (verifying its SHA-256 and running
// PRAGMA integrity_check), and every pooled connection is a go-sqlite3
// connection to that file, in WAL mode by default. A corrupt snapshot is
// an error matching snapshot.ErrCorrupt, returned to the query that
// triggered the restore; a failed restore is retried by the next query and
// never flushed over the bucket.
//
// Snapshots go back to the bucket periodically (flush_interval, 1m by
// default), when you call Flush, and on db.Close. A flush that finds no
// commit since the previous one costs nothing: no backup, no hash, no
// request. Otherwise the database is backed up with SQLite's online backup
// API, hashed, and uploaded only if the hash changed, with a conditional
// write that fails with snapshot.ErrConflict instead of overwriting a
// snapshot someone else wrote.
//
//	res, err := driver.Flush(ctx, db)   // res.Uploaded, res.BytesWritten, res.SnapshotHash
//	st, err := driver.GetStats(db)      // counts, last flush, last error
//
// # Durability
//
// A crash loses the writes committed since the last successful flush;
// with a persistent working copy (local=PATH) not even those: the next
// open finds the working copy ahead of the bucket and flushes it. Once
// Flush or db.Close returns nil, the bucket holds every write committed
// before the call. db.Close does not wait for connections still in use.
//
// # Signals
//
// A library does not install signal handlers by itself. CloseOnSignal
// opts in: on SIGINT or SIGTERM it closes the database, running the final
// flush.
//
// # The raw connection
//
// sql.Conn.Raw hands you the *sqlite3.SQLiteConn of github.com/mattn/go-sqlite3
// itself, for its backup, hooks and functions:
//
//	conn.Raw(func(dc any) error {
//		sc := dc.(*sqlite3.SQLiteConn)
//		...
//	})
//
// With a persistent working copy (local=PATH), do not replace its commit
// hook: the driver records with it, before the first commit since a flush
// lands, that the working copy is ahead of the bucket.
package driver
