package bucket

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// How a Dir stores an object.
//
// The object at key "a/b" is the file ROOT/a/b, holding exactly the
// object's content and nothing else, so that a snapshot in a directory
// bucket is a SQLite database anyone can open with sqlite3, and a file
// copied into the directory by hand is an object. Its ETag and metadata
// live beside it, in a sidecar named for it: ROOT/a/.bucketsqlite.b.meta,
// a JSON document such as
//
//	{"current": {"etag":…,"size":…,"ino":…,"mtime_ns":…,"metadata":{…}},
//	 "previous": {…}}
//
// Each entry describes one version of the object file: its inode number,
// size and modification time (to the nanosecond where the file system
// keeps it), which a rename(2) preserves. A reader opens the object file
// first (the open file pins that version), fstats it, then reads the
// sidecar, and trusts an entry only if it matches the open file. A file
// no entry matches (a file put in place or edited by hand, or left by a
// crash) is an object without metadata, whose ETag is computed from the
// content, as an Upload without metadata would have made it: hashing
// the open file gives the same answer every time, so it is stable, and
// new content is never paired with old metadata.
//
// A write prepares the new object file in a temporary file beside it
// (fsynced, then fstatted), takes the root's lock, reads the entry that
// matches the object file it is about to replace, and renames a new
// sidecar into place, fsyncs the directory, renames the object file into
// place and fsyncs the directory again. The new sidecar's "previous"
// entry is the one that matched the file being replaced, which is what
// keeps the two renames atomic to readers and crashes:
//
//   - A reader that opened the old file, before or between the renames,
//     finds the old version described by either sidecar.
//   - A reader that opened the new file finds the new sidecar, which was in
//     place first.
//   - A crash between the renames leaves the old file with a sidecar
//     whose "previous" entry describes it: the old object is intact. The
//     directory fsync between the renames means a crash can never keep
//     the second rename but lose the first.
//
// Delete removes the object file first, then its sidecar. A reader whose
// sidecar entry does not match its open file looks at the path again: if
// it no longer names the file the reader opened, a write or a delete
// happened meanwhile, and the reader starts over (after a few tries,
// under the root's lock). Only when the path still names the open file
// does the reader conclude the object has no metadata.
//
// The check cannot see an edit that keeps a file's inode and size within
// one tick of the file system's clock (some keep seconds only) after Dir
// wrote it; an edit made later, one that changes the size, and any
// replacement of the file are seen.

// maxMetadataLen bounds an object's metadata, JSON-encoded. S3 limits user
// metadata to 2 KiB; this leaves room for escaping.
const maxMetadataLen = 64 << 10

// maxSidecarLen bounds the sidecar a reader accepts: two versions, each
// with at most maxMetadataLen of metadata.
const maxSidecarLen = 2*maxMetadataLen + 4<<10

// sidecar is the JSON document kept beside an object file.
type sidecar struct {
	// Current describes the object file the last write renamed into place.
	Current *objVersion `json:"current"`
	// Previous describes the object file that write replaced, if one
	// matched its sidecar: until the replacement's rename, that file is
	// still the object.
	Previous *objVersion `json:"previous,omitempty"`
}

// objVersion describes one version of an object file.
type objVersion struct {
	ETag     string            `json:"etag"`
	Size     int64             `json:"size"`
	Ino      uint64            `json:"ino"`
	MtimeNS  int64             `json:"mtime_ns"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// describes reports whether v describes the file whose FileInfo is fi and
// file ID id.
func (v *objVersion) describes(fi fs.FileInfo, id uint64) bool {
	return v != nil && v.Ino == id && v.Size == fi.Size() && v.MtimeNS == fi.ModTime().UnixNano() &&
		len(v.ETag) == etagLen && v.ETag[0] == '"' && v.ETag[etagLen-1] == '"'
}

// match returns the entry of s that describes the open file, or nil.
func (s *sidecar) match(fi fs.FileInfo, id uint64) *objVersion {
	switch {
	case s == nil:
		return nil
	case s.Current.describes(fi, id):
		return s.Current
	case s.Previous.describes(fi, id):
		return s.Previous
	}
	return nil
}

// checkMetadataLen rejects metadata too large for a sidecar.
func checkMetadataLen(md map[string]string) error {
	js, err := json.Marshal(md)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	if len(js) > maxMetadataLen {
		return fmt.Errorf("%w: %d bytes encoded, more than %d", ErrInvalidMetadata, len(js), maxMetadataLen)
	}
	return nil
}

// sidecarPrefix and sidecarSuffix surround an object file's name to make
// its sidecar's. The prefix makes it one of Dir's own names, so no key
// can reach it and List never shows it.
const (
	sidecarPrefix = reservedPrefix + "."
	sidecarSuffix = ".meta"
	// hashedSidecarPrefix names the sidecars of files whose names are too
	// long to take the prefix and suffix; it cannot start a plain
	// sidecar's name.
	hashedSidecarPrefix = reservedPrefix + "-sha256-"
	// maxNameLen is the longest file name most file systems accept.
	maxNameLen = 255
)

// sidecarPath returns the sidecar of the object file at path.
func sidecarPath(path string) string {
	return filepath.Join(filepath.Dir(path), sidecarName(filepath.Base(path)))
}

// sidecarName returns the name of the sidecar of the object file called
// name: ".bucketsqlite.NAME.meta", or, when that would be too long a file
// name, one made of a hash of the name. (On a case-insensitive file
// system, two such long names that differ only in case name one object
// file but two sidecars: the object then reads as having no metadata
// through one of them.)
func sidecarName(name string) string {
	if len(sidecarPrefix)+len(name)+len(sidecarSuffix) <= maxNameLen {
		return sidecarPrefix + name + sidecarSuffix
	}
	sum := sha256.Sum256([]byte(name))
	return hashedSidecarPrefix + hex.EncodeToString(sum[:]) + sidecarSuffix
}

// readSidecar reads the sidecar at path. A missing sidecar is nil, and so
// is one that cannot be decoded: it describes no file, so the object
// reads as having no metadata. Any other error is returned, so that a
// passing failure to read it does not make an object lose its metadata.
func readSidecar(path string) (*sidecar, error) {
	f, err := os.Open(path)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	js, err := io.ReadAll(io.LimitReader(f, maxSidecarLen+1))
	if err != nil {
		return nil, err
	}
	var s sidecar
	if len(js) > maxSidecarLen || json.Unmarshal(js, &s) != nil {
		return nil, nil
	}
	return &s, nil
}

// errChanged means the path of an object file no longer names the file a
// reader opened: a write or a delete happened while it read.
var errChanged = errors.New("object changed while being read")
