package driver

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/buckethead/bucketsqlite/internal/fsutil"
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
	Dirty bool `json:"dirty"`
	// Pending holds the SHA-256 of snapshots whose upload started and was
	// not confirmed: recorded before each upload, cleared by the next
	// successful flush. A bucket object carrying one of them is this
	// working copy's own upload, which landed though the process stopped
	// (or the call failed) before it could say so: not a divergence.
	Pending []string `json:"pending,omitempty"`
	// PrevETag is remoteState.PrevETag.
	PrevETag string `json:"prev_etag,omitempty"`
	// Seq, BaseSeq and Image are remoteState's (sync=log).
	Seq     uint64    `json:"seq,omitempty"`
	BaseSeq uint64    `json:"base_seq,omitempty"`
	Image   string    `json:"image,omitempty"`
	Updated time.Time `json:"updated"`
}

// remoteState is what the bucket holds, as this process last saw it: the
// one record the syncer flushes against and Stats are derived from.
type remoteState struct {
	// ETag is the object's ETag; empty when the bucket holds no snapshot
	// (a first flush then writes only if there is still none).
	ETag string
	// SHA256 is the hash of the snapshot at ETag; empty when unknown, so
	// that the next flush uploads even a snapshot that hashes the same.
	SHA256 string
	// Pending holds the hashes of uploads that started and were not
	// confirmed since the last success: their object may be in the
	// bucket (snapshot.FlushOptions.Unconfirmed).
	Pending []string
	// PrevETag is the ETag of KEY.prev as the last flush left it; empty
	// when unknown (the next flush that keeps the previous snapshot then
	// asks the bucket what is there, with one Stat).
	PrevETag string
	// Seq is the last delta after the base at ETag (sync=log); BaseSeq
	// the sequence that base records; Image the image checksum of the
	// state after Seq, in hex: what a clean working copy must hold.
	Seq, BaseSeq uint64
	Image        string
}

// state is the fingerprint a clean working copy's content must match:
// the image checksum with a delta log, the snapshot's SHA-256 without.
func (r remoteState) state() string {
	if r.Image != "" {
		return "image:" + r.Image
	}
	return r.SHA256
}

// remote returns the part of the record that describes the bucket.
func (st *syncState) remote() remoteState {
	return remoteState{ETag: st.ETag, SHA256: st.SHA256, Pending: slices.Clone(st.Pending), PrevETag: st.PrevETag,
		Seq: st.Seq, BaseSeq: st.BaseSeq, Image: st.Image}
}

// maxPending bounds remoteState.Pending: flushes
// that failed in a row beyond it are forgotten, oldest first, and an
// upload of theirs that landed would show up as a conflict.
const maxPending = 16

// addHash appends h to hs unless present, keeping at most maxPending.
func addHash(hs []string, h string) []string {
	if h == "" || slices.Contains(hs, h) {
		return hs
	}
	hs = append(hs, h)
	if len(hs) > maxPending {
		hs = slices.Clone(hs[len(hs)-maxPending:])
	}
	return hs
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
	if err := fsutil.WriteFileAtomic(statePath(local), data, 0o600); err != nil {
		return fmt.Errorf("write sync state: %w", err)
	}
	return nil
}

// begin records, for a persistent working copy, what the bucket holds and
// whether the working copy is ahead of it, when the database opens.
func (w *workingCopy) begin(remote remoteState, dirty bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record = syncState{Bucket: w.bucket, Key: w.key, ETag: remote.ETag, SHA256: remote.SHA256, Pending: remote.Pending, PrevETag: remote.PrevETag,
		Seq: remote.Seq, BaseSeq: remote.BaseSeq, Image: remote.Image, Dirty: dirty}
	w.dirtyMarked.Store(dirty)
	if !w.persist {
		return nil
	}
	return writeState(w.path, w.record)
}

// onCommit is the commit hook of every pooled connection to a persistent
// working copy. It counts commits and records on disk that the working
// copy is ahead of the bucket before the first commit since a flush lands.
func (w *workingCopy) onCommit() int {
	w.commits.Add(1)
	if w.dirtyMarked.Load() {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.record.Dirty {
		return 0
	}
	st := w.record
	st.Dirty = true
	if err := writeState(w.path, st); err != nil {
		// Refuse the commit rather than lose track of it.
		w.log.Error("bucketsqlite: cannot record unflushed writes; refusing commit", "err", err)
		return 1
	}
	w.record.Dirty = true
	w.dirtyMarked.Store(true)
	return 0
}

// pending records, before an upload starts, the hash it carries: should it
// land and the process stop before it returns, a restart finds it ours.
func (w *workingCopy) pending(remote remoteState) error {
	if !w.persist {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.record
	st.Pending = remote.Pending
	if err := writeState(w.path, st); err != nil {
		return err
	}
	w.record.Pending = remote.Pending
	return nil
}

// synced records what the bucket now holds: dirty unless every commit
// counted up to n0 (see barrier) made it into the snapshot.
func (w *workingCopy) synced(remote remoteState, n0 uint64) error {
	if !w.persist {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirtyMarked.Store(false) // from here on, commits wait for the record
	st := syncState{Bucket: w.bucket, Key: w.key, ETag: remote.ETag, SHA256: remote.SHA256, Pending: remote.Pending, PrevETag: remote.PrevETag,
		Seq: remote.Seq, BaseSeq: remote.BaseSeq, Image: remote.Image}
	st.Dirty = w.commits.Load() != n0
	if err := writeState(w.path, st); err != nil {
		w.record.Dirty = true // unknown: let the next commit rewrite it
		w.dirtyMarked.Store(true)
		return err
	}
	w.record = st
	w.dirtyMarked.Store(st.Dirty)
	return nil
}
