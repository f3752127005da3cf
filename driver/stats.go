//go:build cgo

package driver

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// FlushResult is the outcome of a flush.
type FlushResult struct {
	snapshot.Result
	// Idle reports that nothing was committed since the last flush, so the
	// flush did nothing at all: no backup, no hash, no request.
	Idle bool
}

// Stats are a database's flush statistics, for dashboards and health
// checks.
type Stats struct {
	// Restored reports that the first connection restored a snapshot from
	// the bucket (false: a new database, or a persistent working copy
	// that was already current).
	Restored bool
	// RestoredBytes is the size of the restored snapshot.
	RestoredBytes int64
	// RestoreDuration is how long the restore (or reconciliation) took.
	RestoreDuration time.Duration
	// Flushes counts flush attempts: periodic, explicit and final.
	Flushes int64
	// Uploads counts flushes that uploaded a snapshot.
	Uploads int64
	// Skips counts flushes that uploaded nothing because nothing changed
	// (Idle, or an identical snapshot hash).
	Skips int64
	// Failures counts flushes that returned an error.
	Failures int64
	// BytesUploaded is the total size of uploaded snapshots.
	BytesUploaded int64
	// LastFlush is when the last successful flush (upload or skip) ended.
	LastFlush time.Time
	// LastUpload is when the last upload ended.
	LastUpload time.Time
	// LastHash is the SHA-256 of the snapshot the bucket holds.
	LastHash string
	// ETag is the ETag of the snapshot the bucket holds, as last seen.
	ETag string
	// LastError is the last flush's error; nil after a success.
	LastError error
	// Conflicted reports that a flush found the snapshot changed by another
	// writer; periodic flushing stops until the database is reopened.
	Conflicted bool
	// LocalPath is the working copy's path.
	LocalPath string

	// Seq is the sequence of the last delta in the bucket (sync=log).
	Seq uint64
	// Deltas counts the deltas this process uploaded (sync=log).
	Deltas int64
	// DeltaBytes is their total size.
	DeltaBytes int64
	// Compactions counts the new bases written once deltas added up.
	Compactions int64

	// Replica reports a read replica (replica=true). The fields below are
	// a replica's; Seq is then the sequence of the state it holds, ETag
	// and LastHash its base's, LastError the last refresh's error.
	Replica bool
	// Refreshes counts refreshes (polls), periodic and explicit.
	Refreshes int64
	// RefreshFailures counts refreshes that returned an error.
	RefreshFailures int64
	// LastRefresh is when the last successful refresh ended: the replica
	// held everything the bucket had then.
	LastRefresh time.Time
	// DeltasDownloaded and BytesDownloaded count the deltas and bytes
	// (deltas and bases) downloaded since the replica opened, the first
	// restore included.
	DeltasDownloaded int64
	BytesDownloaded  int64
	// DeltasApplied counts the deltas applied by refreshes.
	DeltasApplied int64
	// Rebases counts restores of a new base after the first (the log had
	// moved on without the replica, or the key was replaced).
	Rebases int64
	// LastApply is how long the last apply held the working copy's
	// exclusive lock: readers waited at most that long for it.
	LastApply time.Duration
	// WriterFlush is when the writer flushed the state the replica holds
	// (the time the last applied delta records); zero when unknown.
	WriterFlush time.Time
	// Lag is the time since WriterFlush when Stats was taken: how old the
	// replica's state is, if the writer has flushed nothing since.
	Lag time.Duration
}

// Flush flushes db now and reports what it did. db must have been opened
// with this driver (sql.Open("bucketsqlite", ...) or
// sql.OpenDB(NewConnector(...))). A database that has not opened a
// connection yet has nothing to flush and reports Idle, and so does a
// read replica (replica=true), which never writes to the bucket.
func Flush(ctx context.Context, db *sql.DB) (FlushResult, error) {
	c, err := connectorOf(db)
	if err != nil {
		return FlushResult{}, err
	}
	return c.Flush(ctx)
}

// GetStats returns db's flush statistics. db must have been opened with
// this driver.
func GetStats(db *sql.DB) (Stats, error) {
	c, err := connectorOf(db)
	if err != nil {
		return Stats{}, err
	}
	return c.Stats(), nil
}

// ErrNotBucketSQLite means a *sql.DB given to Flush or GetStats was not
// opened with this driver.
var ErrNotBucketSQLite = errors.New("bucketsqlite: not a bucketsqlite database")

func connectorOf(db *sql.DB) (*Connector, error) {
	if d, ok := db.Driver().(*boundDriver); ok {
		return d.c, nil
	}
	return nil, ErrNotBucketSQLite
}
