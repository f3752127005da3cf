// Package snapshot moves a SQLite database between a local connection and a
// bucket: Restore brings the latest snapshot down, Flush sends the current
// state up. It is the Go counterpart of the Python original's
// buckethead.storage.snapshot module, with the same semantics and format,
// and adds conditional writes so that concurrent writers cannot clobber
// each other.
//
// # The format
//
// A snapshot is a plain SQLite database file stored as one object at KEY.
// Download it and open it with the sqlite3 shell: it is self-contained, in
// rollback-journal mode (its header says so even when the live database
// runs in WAL mode), and needs no -wal file. The previous snapshot, when
// kept, is at KEY.prev. Flush records the snapshot's SHA-256 in the
// object's metadata under "sha256"; Restore verifies it when present and
// accepts snapshots without it, such as those the Python original writes.
//
// # Keys
//
// A snapshot at KEY owns the keys beside it: KEY.prev (the previous
// snapshot), KEY.probe (ProbeConditions' throw-away object) and the delta
// log under KEY.log/. ValidateKey refuses a key that is one of another
// key's (ending in .prev, .probe or .log, or containing .log/), and one
// too long to leave room for them under S3's 1024-byte limit (MaxKeyLen).
// Flush and Publish check it; Restore also reads KEY.prev, to recover
// from it.
//
// # The delta log
//
// Between full snapshots (bases), a flush may upload only what changed:
// one immutable delta object KEY.log/NNNNNNNNNNNNNNNN (LogKey), holding
// the latest image of every page changed since the previous flush. The
// deltas after a base that includes sequence S are S+1, S+2, ..., each
// naming the base it follows (its SHA-256) and chaining to the state
// before it by an image checksum (Image, PageChecksum): a restore is the
// base plus every delta after its sequence, in order, until the first
// missing. Delta.Encode and DecodeDelta read and write the format,
// ApplyDelta applies a delta to a database file; docs/FORMAT.md in the
// repository specifies objects, sequence rules, checksum and layout for
// third-party readers.
//
// # Flushing
//
// Flush takes a consistent copy of the database with SQLite's online backup
// API (https://sqlite.org/backup.html) into a private temp file, hashes
// it, and uploads it unless the hash equals the previous flush's:
//
//	res, err := snapshot.Flush(ctx, conn, b, "app.db", snapshot.FlushOptions{
//		KeepPrevious: true,
//		LastHash:     last.SnapshotHash, // skip the upload if nothing changed
//		IfMatch:      last.ETag,         // overwrite only what we last saw
//	})
//	if errors.Is(err, snapshot.ErrConflict) {
//		// Someone else wrote the snapshot since: nothing was overwritten.
//	}
//
// The upload is conditional. With IfMatch set it replaces only that
// version of the object; with IfMatch empty (a database that was never
// restored from or flushed to this key) it succeeds only if there is no
// object yet. Either way a failed condition is ErrConflict and the bucket
// is unchanged, so an empty or stale database never replaces a good
// snapshot.
//
// With KeepPrevious the object being replaced is first copied to
// KEY.prev, on the server. The copy replaces only a KEY.prev this package
// wrote for KEY (it carries KEY's hash in its metadata, MetaKeySHA256, or
// the ETag the caller last left there, FlushOptions.PrevETag); anything
// else there is ErrForeignObject, and nothing is written.
//
// A successful upload is then confirmed with one Stat: the object at the
// key must have the snapshot's size and the SHA-256 recorded in its
// metadata. An upload that a faulty backend or proxy acknowledged without
// storing it, or stored only in part, makes Flush return an error instead
// of nil.
//
// A failed Flush does not mean nothing reached the bucket: a response lost
// to a cut connection or a deadline, or an unconfirmed upload, can hide a
// write that landed. The next conditional write then fails on the
// caller's own object. Pass the SnapshotHash of every failed flush since
// the last success in FlushOptions.Unconfirmed: Flush recognises those
// objects (by the SHA-256 in their metadata) and replaces them instead of
// reporting ErrConflict. Without that, Flush still recognises an object
// holding exactly the snapshot it is flushing.
//
// Conditional writes keep writers apart only where the service enforces
// them. Some S3-compatible servers (s3rver) ignore If-Match and
// If-None-Match and overwrite silently; ProbeConditions finds out, with a
// throw-away object at KEY.probe, and reports ErrConditionsIgnored.
//
// # Restoring
//
// Restore downloads the snapshot into a private temp file, verifies it
// (SHA-256, header, PRAGMA integrity_check) and only then copies it into
// the destination connection with the backup API. RestoreFile does the
// same into a file path, with an atomic rename, which is how the
// bucketsqlite driver builds its working copy. A snapshot that fails
// verification is ErrCorrupt and the destination is left as it was; a
// missing snapshot is reported as not found (false), not as an error,
// once a List shows the bucket itself answers (a missing bucket is an
// error, never an empty database).
//
// # What is checked, and what cannot be
//
// Caught: a local database damaged in place (journal_mode=OFF after a
// rolled-back transaction, a disk error), by PRAGMA quick_check on every
// snapshot taken, before it is uploaded (it adds about a quarter to half
// of Take's time, run beside the hash; see BenchmarkTake); a snapshot
// damaged in the bucket or in transit (its SHA-256,
// recorded at upload, no longer matches), cut short (size, header), or
// not SQLite; an upload acknowledged but not stored, stored in part, or
// overwritten by another writer (the confirming Stat, the conditional
// write); a download cut short or reported complete when it was not.
//
// Not caught, and why:
//   - A bucket that lies consistently, in its Stat as well as its Upload:
//     Flush asks the bucket what it holds; only a full download would go
//     further, at the cost of the upload again.
//   - A copy to KEY.prev reported but not made: checking it would cost a
//     request on every flush, for a backup copy.
//   - Damage inside a record's value in a snapshot without the sha256
//     metadata (written by the Python original or by hand): PRAGMA
//     integrity_check verifies structure and indexes, not values.
//   - A backend that tears writes (stores a prefix under the key) can
//     leave a torn object at KEY until the next successful flush replaces
//     it: Restore refuses it with ErrCorrupt, and KEY.prev, when kept,
//     holds the previous snapshot.
//
// # History and point-in-time restore
//
// ReadHistory lists what a bucket holds of a database: the base, KEY.prev,
// the archived bases a writer with a retention keeps (ArchiveKey), and the
// deltas, each with its sequence and flush time. RestoreFile with
// RestoreOptions.At restores the state as of the last flush at or before a
// time, and with RestoreOptions.Seq as of a sequence, verified like any
// restore; a state no longer kept is ErrNotKept.
//
//	info, err := snapshot.RestoreFile(ctx, b, "app.db", "/tmp/app-9am.db",
//		snapshot.RestoreOptions{At: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)})
//
// Verify checks what a restore would use without keeping it; Push makes a
// local SQLite file the database (a new base, conditional, fencing a
// writer still running on the old one); Compact and Prune do on demand
// what a writer in sync=log does on its own. Command bucketsqlite
// (cmd/bucketsqlite) is a thin layer over these.
//
// # Temp files
//
// Snapshots and downloads go through private temp files
// (.bucketsqlite-snapshot-*.db, .bucketsqlite-restore-*.db), as large as
// the database, removed when done. A process killed meanwhile leaves them
// behind; each holds a flock while in use, so RemoveStaleTemp can remove
// those of dead processes, and never one in use.
//
// # Errors
//
// Every failure is an *Error naming the operation and the key. Match kinds
// with errors.Is: ErrCorrupt, ErrConflict, ErrForeignObject,
// ErrConditionsIgnored, ErrNotKept, and ErrSnapshot for any of them; bucket errors (bucket.ErrNotFound, ...) stay matchable through it.
//
// # cgo
//
// The package uses github.com/mattn/go-sqlite3 and so needs cgo
// (CGO_ENABLED=1 and a C compiler). Without cgo it fails to build with an
// error that says so, rather than linking a stub.
package snapshot
