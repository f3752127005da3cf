package snapshot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Temp files are named tempPrefix + kind + "-" + random + tempSuffix, so
// that RemoveStaleTemp recognises them and nothing else.
const (
	tempPrefix  = ".bucketsqlite-"
	tempSuffix  = ".db"
	takePattern = tempPrefix + "snapshot-*" + tempSuffix
	restPattern = tempPrefix + "restore-*" + tempSuffix
)

// sqliteSideFiles are the suffixes of the files SQLite may create beside a
// database.
var sqliteSideFiles = []string{"-journal", "-wal", "-shm"}

// RemoveStaleTemp removes the temp files that snapshots and restores left
// in dir when their process died before it could (a SIGKILL, a crash, a
// power cut): each can be as large as the database. It returns how many
// it removed.
//
// It never removes a file in use: every temp file holds an exclusive
// flock(2) while its process uses it, and RemoveStaleTemp removes only
// the files whose lock it can take, with the SQLite side files beside
// them (-journal, -wal, -shm). Files not named like this package's temp
// files (.bucketsqlite-snapshot-*.db, .bucketsqlite-restore-*.db) are
// never touched. Call it for the directories temp files go to (the
// driver's working-copy directory, FlushOptions.TempDir) when a process
// starts. On systems without flock (Windows, Solaris, ...) it removes
// nothing and returns 0, nil.
//
// A directory on a network file system that does not share flock locks
// between clients (some NFS setups) could make a live temp file of
// another machine look stale: do not point two machines' temp files at
// one shared directory.
func RemoveStaleTemp(dir string) (removed int, err error) {
	if !canLockTemp {
		return 0, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !isTempName(name) {
			continue
		}
		path := filepath.Join(dir, name)
		ok, err := removeIfStale(path)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed++
		}
	}
	// Side files whose database is gone (its removal was cut short).
	for _, e := range ents {
		name := e.Name()
		for _, side := range sqliteSideFiles {
			main, ok := strings.CutSuffix(name, side)
			if !ok || !isTempName(main) {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dir, main)); errors.Is(err, fs.ErrNotExist) {
				if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return removed, errors.Join(errs...)
}

// isTempName reports whether name is one of this package's temp files.
func isTempName(name string) bool {
	for _, p := range []string{takePattern, restPattern} {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}
