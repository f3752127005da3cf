// Package driver is the bucketsqlite database/sql driver: a SQLite
// database whose durable home is a snapshot in an S3-compatible bucket
// (AWS S3, Cloudflare R2, versitygw, ...), a local directory or process
// memory. Importing the package registers the driver as "bucketsqlite".
//
// # Opening a database
//
//	import (
//		"context"
//		"database/sql"
//		"errors"
//		"fmt"
//
//		"github.com/buckethead/bucketsqlite/driver" // registers "bucketsqlite"
//	)
//
//	func run(ctx context.Context) (err error) {
//		db, err := sql.Open("bucketsqlite", "s3://my-bucket/apps/todo.db?region=auto&endpoint=https://ACCOUNT.r2.cloudflarestorage.com")
//		if err != nil {
//			return err
//		}
//		defer func() { // the final flush: without it, the writes since the last flush are lost
//			if cerr := db.Close(); cerr != nil {
//				err = errors.Join(err, fmt.Errorf("final flush: %w", cerr))
//			}
//		}()
//		_, err = db.ExecContext(ctx, `INSERT INTO todos(title) VALUES (?)`, "ship it")
//		return err
//	}
//
// Close is the final flush, and its error is the only word that the last
// writes reached the bucket: defer it and check it, as above, and let
// SIGINT and SIGTERM cancel ctx (signal.NotifyContext) so that run
// returns through it. A process that exits without Close (os.Exit,
// log.Fatal, an unhandled signal) loses the writes committed since the
// last flush.
//
// Between sql.Open and Close, everything is plain database/sql, sqlx or
// an ORM. Credentials come from the standard AWS chain (environment
// variables, shared config and profiles, instance and web-identity
// roles), never from the DSN.
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
// # Sharing a database
//
// A second sql.Open (or NewConnector) of the same bucket and key in one
// process, however the DSN spells them, shares the database: one working
// copy, one restore, one flush loop. Each *sql.DB keeps its own pool and
// its own per-connection settings (_foreign_keys, _pragma=NAME(VALUE) and
// go-sqlite3's other per-connection parameters), which may differ from
// handle to handle. Each db.Close flushes what was committed and returns
// that flush's error; the last one runs the final flush and releases the
// working copy. So a tool that closes the *sql.DB it is given (goose,
// golang-migrate) can have a handle of its own without closing yours.
//
// Settings that cannot be shared must agree: flush_interval,
// flush_timeout, keep_previous, local, integrity_check,
// conditional_writes, retention, _journal_mode and the S3 settings (endpoint,
// region, profile, path_style). A second open that disagrees fails with a
// *DSNError naming the parameter (errors.Is(err, ErrInvalidDSN)).
// A second open of the same database is never ErrInUse: that error, from
// the first connection, means the working copy (local=PATH) is held by
// another process, or by another database given the same path.
//
// # Durability
//
// A crash loses the writes committed since the last successful flush;
// with a persistent working copy (local=PATH) not even those: the next
// open finds the working copy ahead of the bucket and flushes it. Once
// Flush or db.Close returns nil, the bucket holds every write committed
// before the call. db.Close does not wait for connections still in use.
//
// # Incremental sync
//
// With sync=log in the DSN (Config.Sync = SyncLog) a flush uploads only
// the pages committed since the previous flush, read from the working
// copy's WAL, as one immutable delta object beside the snapshot
// (KEY.log/SEQ, written with If-None-Match so that a second writer gets
// snapshot.ErrConflict). KEY stays a complete SQLite file, the base; a
// restore applies the deltas after it, checking each; once they add up to
// half the base the writer compacts them into a new one. A one-row change
// then costs one small PUT and one HEAD whatever the database's size, so
// such a DSN flushes every second unless flush_interval says otherwise
// (DefaultLogFlushInterval). In a rollback-journal mode, with no WAL to
// read, a flush finds the changed pages by comparing a snapshot with the
// image the bucket holds: it reads the whole database, but still uploads
// only what changed. The format is specified in docs/FORMAT.md.
//
// # Read replicas
//
// With replica=true (Config.Replica) a database is a read replica of a
// writer that uses sync=log, in this or any other process, on any
// machine that reaches the bucket:
//
//	db, err := sql.Open("bucketsqlite", "s3://my-bucket/app.db?replica=true")
//
// It restores like a writer, then every refresh_interval (default 1s,
// Config.RefreshInterval) asks for the writer's next delta with one GET of
// its key and applies what it finds; Refresh(ctx, db) makes it catch up
// now. Every query sees one whole state the writer flushed, old or new: a
// delta is downloaded and checked with no lock held, then written into the
// working copy while an exclusive SQLite lock holds readers off (a read
// transaction in progress holds the apply off instead, so it sees one
// state throughout). A damaged delta leaves the replica on its last good
// state, with the error in Stats.LastError; a log that moved on (the
// writer compacted past the replica) is followed by restoring its new
// base. A replica never writes to the bucket: its connections are
// read-only, so a write fails with SQLite's "attempt to write a readonly
// database" (sqlite3.ErrReadonly), and Flush on it does nothing (Idle).
// With local=PATH, a restarted replica goes on from the sequence its
// working copy holds. Stats report its sequence, WriterFlush and Lag,
// downloads, refreshes and failures.
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
