// Package fsutil holds the file-system steps that more than one package
// of bucketsqlite needs, written once: publishing a file atomically, and
// an exclusive lock on a file.
//
// # Publishing a file atomically
//
// A file written in place can be seen, or survive a crash, half written.
// The cure is to write a temporary file beside the destination, fsync it,
// rename it over the destination (atomic within one directory), and fsync
// the directory, so that the rename itself survives a crash. For a small
// file held in memory, one call does all of it:
//
//	err := fsutil.WriteFileAtomic(path, data, 0o600)
//
// A caller that fills the file itself, or orders the steps around other
// work (the directory bucket writes a sidecar between the fsync and the
// rename; a restore verifies the database first), uses a [TempFile]:
//
//	t, err := fsutil.CreateTemp(path, "")
//	if err != nil {
//		return err
//	}
//	defer t.Discard() // removes the temporary file unless it was renamed
//	if _, err := t.Write(data); err != nil {
//		return err
//	}
//	return t.Commit() // fsync, close, rename, fsync the directory
//
// or, instead of Commit, its own steps ending in [TempFile.Rename] and
// [SyncDir]. Temporary files are private (mode 0600), whatever the umask.
//
// # Locking a file
//
// [TryLock] takes an exclusive lock on a lock file without waiting, and
// fails with [ErrLocked] when another holder has it; [Lock] waits for it
// until its context ends. On systems with flock(2) the lock excludes every
// other holder, in this process (each call opens the file anew) or in
// another, and dies with the process that holds it, so a crash never
// leaves a stale lock behind. Elsewhere it excludes holders within this
// process only.
package fsutil
