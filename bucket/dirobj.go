package bucket

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The file format of a Dir object.
//
// Each object is a single file, holding a small header and then the
// content:
//
//	"BSQLOBJ\x01"            8 bytes of magic
//	n                        4 bytes, big-endian: the header's length
//	{"etag":…,"size":…,…}    n bytes of JSON: ETag, content size, metadata
//	content                  size bytes
//
// Keeping the metadata and ETag in the same file as the content, rather
// than in a sidecar beside it, is what makes a write atomic: Dir publishes
// an object with a single rename(2), so a reader (or a crash) sees either
// the whole previous file or the whole new one, and can never pair new
// content with old metadata or an old ETag. A sidecar would need two
// renames and a reader check of the content's hash on every Stat. The cost
// is that an object's file is not the bare content: its content starts at
// offset 12+n.
//
// The header is written before the content is hashed, with a placeholder
// ETag of the same length as the real one (local ETags have a fixed
// length), and overwritten in place once the hash is known, before the file
// is synced and renamed into place.

// objMagic starts every object file.
const objMagic = "BSQLOBJ\x01"

// maxHeaderLen bounds the header a reader accepts. S3 limits user
// metadata to 2 KiB; this leaves room for JSON escaping.
const maxHeaderLen = 64 << 10

// objHeader is the JSON header of an object file.
type objHeader struct {
	ETag     string            `json:"etag"`
	Size     int64             `json:"size"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

var (
	// errForeign means a file under a Dir's root was not written by Dir.
	errForeign = errors.New("not an object file written by bucket.Dir")
	// errCorrupt means an object file is damaged.
	errCorrupt = errors.New("corrupt object file")
)

// placeholderETag holds an ETag's place until the content is hashed.
var placeholderETag = `"` + strings.Repeat("0", etagLen-2) + `"`

// encodeHeader returns the bytes that start the object file for h.
func encodeHeader(h objHeader) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(js) > maxHeaderLen {
		return nil, fmt.Errorf("%w: metadata too large (%d bytes encoded)", ErrInvalidMetadata, len(js))
	}
	b := make([]byte, 0, len(objMagic)+4+len(js))
	b = append(b, objMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(js)))
	return append(b, js...), nil
}

// readHeader reads the header of the object file f, whose total length is
// fileSize, and returns it with the offset at which the content starts.
func readHeader(f io.ReaderAt, fileSize int64) (objHeader, int64, error) {
	var h objHeader
	var pre [len(objMagic) + 4]byte
	if _, err := f.ReadAt(pre[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return h, 0, errForeign
		}
		return h, 0, err
	}
	if string(pre[:len(objMagic)]) != objMagic {
		return h, 0, errForeign
	}
	n := int64(binary.BigEndian.Uint32(pre[len(objMagic):]))
	if n > maxHeaderLen {
		return h, 0, fmt.Errorf("%w: header length %d", errCorrupt, n)
	}
	js := make([]byte, n)
	if _, err := f.ReadAt(js, int64(len(pre))); err != nil {
		if errors.Is(err, io.EOF) {
			return h, 0, fmt.Errorf("%w: truncated header", errCorrupt)
		}
		return h, 0, err
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return h, 0, fmt.Errorf("%w: header: %v", errCorrupt, err)
	}
	off := int64(len(pre)) + n
	if len(h.ETag) != etagLen || h.Size < 0 || off+h.Size != fileSize {
		return h, 0, fmt.Errorf("%w: header does not match the file (etag %q, size %d, file %d bytes)", errCorrupt, h.ETag, h.Size, fileSize)
	}
	return h, off, nil
}
