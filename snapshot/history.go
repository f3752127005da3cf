package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
)

// MetaTime is the object-metadata key under which a writer with a delta
// log records when the state a base holds was flushed: RFC 3339 with
// nanoseconds, UTC. With it a point in time maps to a base without
// reading any delta. A base without it (an earlier release, a copy made
// by hand) is taken to be as old as its object (Attrs.ModTime).
const MetaTime = "time"

// MetaWriter is the object-metadata key under which a writer with a
// delta log records who wrote a base: "hostname/pid", as a delta's header
// does, for operators (printable ASCII; other bytes become '?').
const MetaWriter = "writer"

// thisWriter names this process as MetaWriter and Delta.Writer do.
func thisWriter() string {
	host, _ := os.Hostname()
	w := []byte(fmt.Sprintf("%s/%d", host, os.Getpid()))
	for i, c := range w {
		if c < 0x20 || c > 0x7e {
			w[i] = '?'
		}
	}
	return string(w[:min(len(w), MaxDeltaWriter)])
}

// ArchiveSuffix is appended to a delta log key to name an archived base:
// KEY.log/NNNNNNNNNNNNNNNN.base is the base that included sequence N,
// kept for point-in-time restores by a writer with a retention (see
// docs/FORMAT.md). The name is not a delta's: readers that probe
// KEY.log/N never see it, and listings skip it.
const ArchiveSuffix = ".base"

// ArchiveKey returns the key of the archived base that includes sequence
// seq: LogKey(key, seq)+ArchiveSuffix.
func ArchiveKey(key string, seq uint64) string { return LogKey(key, seq) + ArchiveSuffix }

// VersionKind says what a Version is.
type VersionKind string

// The kinds of Version.
const (
	// KindBase is the current base, KEY.
	KindBase VersionKind = "base"
	// KindPrev is the previous base kept at KEY.prev.
	KindPrev VersionKind = "prev"
	// KindArchive is an archived base, KEY.log/N.base.
	KindArchive VersionKind = "archive"
	// KindDelta is a delta, KEY.log/N.
	KindDelta VersionKind = "delta"
)

// Version is one object of a database's history: a base or a delta.
type Version struct {
	// Kind says which object this is.
	Kind VersionKind `json:"kind"`
	// Key is the object's key.
	Key string `json:"key"`
	// Seq is the sequence it includes (a base) or is (a delta).
	Seq uint64 `json:"seq"`
	// Log reports that a base records a sequence (MetaSeq): it is the
	// base of a delta log. Always true for deltas.
	Log bool `json:"log"`
	// Time is when the state it holds was flushed: a base's MetaTime, a
	// delta's header time; zero for deltas whose header was not read
	// (HistoryOptions.DeltaHeaders), and a base's ModTime when it records
	// none (TimeRecorded is then false).
	Time time.Time `json:"time"`
	// TimeRecorded reports that Time was recorded by the writer rather
	// than taken from the object's modification time.
	TimeRecorded bool `json:"time_recorded"`
	// Size is the object's length in bytes.
	Size int64 `json:"size"`
	// Writer is who wrote it ("hostname/pid"): a delta's header, a base's
	// MetaWriter.
	Writer string `json:"writer,omitempty"`
	// SHA256 is a base's MetaSHA256.
	SHA256 string `json:"sha256,omitempty"`
	// ETag is the object's ETag.
	ETag string `json:"etag"`
	// ModTime is when the object was last written, as the bucket says.
	ModTime time.Time `json:"mod_time"`
}

// History is what a bucket holds of a database: its bases and deltas.
type History struct {
	// Key is the database's key.
	Key string `json:"key"`
	// Base is the current base, KEY; nil when there is none.
	Base *Version `json:"base"`
	// Prev is KEY.prev when it holds a previous base of KEY; nil
	// otherwise.
	Prev *Version `json:"prev"`
	// Archives are the archived bases, by sequence.
	Archives []Version `json:"archives"`
	// Deltas are the deltas, by sequence.
	Deltas []Version `json:"deltas"`
}

// HistoryOptions tune ReadHistory.
type HistoryOptions struct {
	// DeltaHeaders downloads every delta to read its time and writer
	// from its header (one GET each, a few in parallel). Without it a
	// delta's Time is zero and its Writer empty.
	DeltaHeaders bool
}

// ReadHistory lists what the bucket holds of the database at key: one
// Stat each of KEY and KEY.prev, one LIST of KEY.log/ (paged), one Stat
// per archived base (their time is in their metadata), and with
// opts.DeltaHeaders one GET per delta. Objects under KEY.log/ whose
// names are neither a delta's nor an archived base's are left out.
func ReadHistory(ctx context.Context, b bucket.Bucket, key string, opts HistoryOptions) (*History, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fail("history", key, err)
	}
	h := &History{Key: key}
	var err error
	if h.Base, err = statBase(ctx, b, key, KindBase, ""); err != nil {
		return nil, err
	}
	// KEY.prev counts only when it is a previous base of this key.
	if h.Prev, err = statBase(ctx, b, PrevKey(key), KindPrev, keyHash(key)); err != nil {
		return nil, err
	}
	objs, err := bucket.ListAll(ctx, b, LogPrefix(key))
	if err != nil {
		return nil, fail("history", key, err)
	}
	for _, o := range objs {
		seq, archive, ok := parseLogName(strings.TrimPrefix(o.Key, LogPrefix(key)))
		switch {
		case !ok:
		case archive:
			v, err := statBase(ctx, b, o.Key, KindArchive, "")
			if err != nil {
				return nil, err
			}
			if v != nil {
				h.Archives = append(h.Archives, *v)
			}
		default:
			h.Deltas = append(h.Deltas, Version{Kind: KindDelta, Key: o.Key, Seq: seq, Log: true, Size: o.Size, ETag: o.ETag, ModTime: o.ModTime})
		}
	}
	bySeq := func(a, b Version) int { return cmpSeq(a.Seq, b.Seq) }
	slices.SortFunc(h.Archives, bySeq)
	slices.SortFunc(h.Deltas, bySeq)
	if opts.DeltaHeaders {
		if err := readDeltaHeaders(ctx, b, key, h.Deltas); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseLogName parses the name of an object under KEY.log/: a delta's
// (16 digits) or an archived base's (16 digits and ArchiveSuffix).
func parseLogName(name string) (seq uint64, archive, ok bool) {
	digits, archive := strings.CutSuffix(name, ArchiveSuffix)
	if len(digits) != LogSeqDigits {
		return 0, false, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, archive, err == nil
}

// statBase describes the base at k, or returns nil when there is none,
// or, with owner set, when it does not record that key hash
// (MetaKeySHA256).
func statBase(ctx context.Context, b bucket.Bucket, k string, kind VersionKind, owner string) (*Version, error) {
	a, err := b.Stat(ctx, k)
	if errors.Is(err, bucket.ErrNotFound) || err == nil && owner != "" && a.Metadata[MetaKeySHA256] != owner {
		return nil, nil
	}
	if err != nil {
		return nil, fail("history", k, err)
	}
	v, err := baseVersion(a, kind)
	if err != nil {
		return nil, corrupt("history", k, "%w", err)
	}
	return &v, nil
}

// baseVersion describes a base from its attributes.
func baseVersion(a bucket.Attrs, kind VersionKind) (Version, error) {
	seq, hasLog, err := baseSeq(a)
	if err != nil {
		return Version{}, err
	}
	v := Version{Kind: kind, Key: a.Key, Seq: seq, Log: hasLog, Size: a.Size, SHA256: a.Metadata[MetaSHA256],
		ETag: a.ETag, ModTime: a.ModTime, Time: a.ModTime, Writer: a.Metadata[MetaWriter]}
	if s := a.Metadata[MetaTime]; s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Version{}, fmt.Errorf("base metadata %s=%q is not an RFC 3339 time", MetaTime, s)
		}
		v.Time, v.TimeRecorded = t.UTC(), true
	}
	return v, nil
}

// readDeltaHeaders fills in the time and writer of each delta from its
// header, a few downloads at a time. A delta deleted meanwhile (a
// compaction) keeps a zero time.
func readDeltaHeaders(ctx context.Context, b bucket.Bucket, key string, ds []Version) error {
	sem := make(chan struct{}, logPrefetch)
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i := range ds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e := downloadDelta(ctx, b, key, ds[i].Seq)
			switch {
			case e.missing:
			case e.err != nil:
				errs[i] = e.err
			default:
				t, w, err := deltaHeaderInfo(e.data)
				if err != nil {
					errs[i] = corrupt("history", ds[i].Key, "%w", err)
					return
				}
				ds[i].Time, ds[i].TimeRecorded, ds[i].Writer = t, true, w
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deltaHeaderInfo reads the flush time and the writer from a delta's
// header, without checking the rest (DecodeDelta does that).
func deltaHeaderInfo(data []byte) (time.Time, string, error) {
	if len(data) < DeltaHeaderSize || !bytes.Equal(data[:len(DeltaMagic)], []byte(DeltaMagic)) {
		return time.Time{}, "", errors.New("not a delta (no delta header)")
	}
	t := time.Unix(0, int64(binary.BigEndian.Uint64(data[deltaOffTime:]))).UTC()
	n := int(data[deltaOffWriter])
	if len(data) < DeltaHeaderSize+n {
		return time.Time{}, "", errors.New("delta header cut short")
	}
	return t, string(data[DeltaHeaderSize : DeltaHeaderSize+n]), nil
}

// Bases returns the bases of h that have a log (the current one, KEY.prev
// and the archived ones), by sequence, oldest first; of two with one
// sequence, the current base comes last.
func (h *History) Bases() []Version {
	var out []Version
	out = append(out, h.Archives...)
	if h.Prev != nil && h.Prev.Log {
		out = append(out, *h.Prev)
	}
	if h.Base != nil && h.Base.Log {
		out = append(out, *h.Base)
	}
	slices.SortStableFunc(out, func(a, b Version) int { return cmpSeq(a.Seq, b.Seq) })
	return out
}

// LastSeq is the last sequence h holds: its newest delta's, or its
// newest base's.
func (h *History) LastSeq() uint64 {
	var last uint64
	for _, v := range h.Bases() {
		last = max(last, v.Seq)
	}
	if n := len(h.Deltas); n > 0 {
		last = max(last, h.Deltas[n-1].Seq)
	}
	return last
}
