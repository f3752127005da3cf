package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// syncState is what the working copy was last synced to, kept beside a
// persistent working copy (LOCAL-bucketsqlite.json) so that a restart can
// tell which side is ahead.
type syncState struct {
	Version int    `json:"version"`
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	// ETag and SHA256 identify the snapshot the working copy was last
	// restored from or flushed to.
	ETag   string `json:"etag"`
	SHA256 string `json:"sha256"`
	// Dirty is set before the first commit after a sync and cleared by the
	// next successful flush that includes every commit: a working copy
	// with Dirty set may hold writes the bucket does not have.
	Dirty   bool      `json:"dirty"`
	Updated time.Time `json:"updated"`
}

const stateVersion = 1

func statePath(local string) string { return local + "-bucketsqlite.json" }
func lockPath(local string) string  { return local + "-bucketsqlite.lock" }

// readState returns the sync state beside local, or nil when there is none
// or it cannot be read (a working copy without a trustworthy record is
// treated as unknown, which is the cautious choice).
func readState(local string) *syncState {
	data, err := os.ReadFile(statePath(local))
	if err != nil {
		return nil
	}
	var st syncState
	if err := json.Unmarshal(data, &st); err != nil || st.Version != stateVersion {
		return nil
	}
	return &st
}

// writeState atomically replaces the sync state beside local: temp file,
// fsync, rename, fsync of the directory.
func writeState(local string, st syncState) error {
	st.Version = stateVersion
	st.Updated = time.Now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dst := statePath(local)
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write sync state: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write sync state: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
