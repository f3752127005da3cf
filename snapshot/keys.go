package snapshot

import (
	"fmt"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
)

// The keys a database's snapshot at KEY owns beside it. They are always
// KEY followed by a suffix, never keys under "KEY/": some services
// (SeaweedFS) and the directory bucket cannot hold an object at "a" and
// objects under "a/" at once.
const (
	// PrevSuffix is appended to a key to name the previous snapshot kept by
	// FlushOptions.KeepPrevious: KEY.prev.
	PrevSuffix = ".prev"

	// ProbeSuffix is appended to a key to name the throw-away object that
	// ProbeConditions writes and deletes: KEY.probe.
	ProbeSuffix = ".probe"

	// LogSuffix is appended to a key to name the folder of its delta log:
	// the log's entries are KEY.log/ followed by LogSeqDigits decimal
	// digits (see LogKey).
	LogSuffix = ".log"

	// LogSeqDigits is the width of a delta log entry's sequence number,
	// zero-padded so that the entries list in order.
	LogSeqDigits = 16
)

// MaxKeyLen is the longest key a snapshot may have: bucket.MaxKeyLen (S3's
// 1024 bytes) less the room taken by the longest key derived from it, a
// delta log entry KEY.log/NNNNNNNNNNNNNNNN. A longer key would be stored,
// and every write beside it would then fail.
const MaxKeyLen = bucket.MaxKeyLen - len(LogSuffix) - len("/") - LogSeqDigits

// PrevKey returns the key of key's previous snapshot: key+PrevSuffix.
func PrevKey(key string) string { return key + PrevSuffix }

// ProbeKey returns the key ProbeConditions uses beside key:
// key+ProbeSuffix.
func ProbeKey(key string) string { return key + ProbeSuffix }

// LogPrefix returns the prefix under which key's delta log entries are
// stored: key+".log/".
func LogPrefix(key string) string { return key + LogSuffix + "/" }

// LogKey returns the key of entry seq of key's delta log:
// key+".log/" followed by seq in LogSeqDigits zero-padded digits. seq must
// be below 10^LogSeqDigits, so that the key stays within MaxKeyLen's room.
func LogKey(key string, seq uint64) string {
	return fmt.Sprintf("%s%0*d", LogPrefix(key), LogSeqDigits, seq)
}

// ValidateKey reports whether key can hold a snapshot: it must be a valid
// bucket key (bucket.ValidateKey), leave room for every key derived from
// it within S3's limit (at most MaxKeyLen bytes), and not be one of the
// keys another snapshot owns beside it: it must not end in ".prev",
// ".probe" or ".log", nor contain ".log/" (compared without regard to
// case, for case-insensitive file systems under the directory bucket).
// Otherwise the second database's writes would land on the first's
// previous snapshot or log, or the first's on the second.
//
// The error matches bucket.ErrInvalidKey and says why. Flush and Publish
// call it; callers that take a key from a user (a DSN) should call it up
// front.
func ValidateKey(key string) error {
	if err := bucket.ValidateKey(key); err != nil {
		return err
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w %.40q...: %d bytes is longer than the %d bytes a snapshot key may have "+
			"(S3's %d-byte limit less %d bytes for the delta log keys KEY.log/NNNNNNNNNNNNNNNN derived from it)",
			bucket.ErrInvalidKey, key, len(key), MaxKeyLen, bucket.MaxKeyLen, bucket.MaxKeyLen-MaxKeyLen)
	}
	lower := strings.ToLower(key)
	for _, suffix := range []string{PrevSuffix, ProbeSuffix, LogSuffix} {
		if strings.HasSuffix(lower, suffix) {
			return fmt.Errorf("%w %q: ends in %q, which is reserved for the objects kept beside a snapshot "+
				"(the key %q would share them)", bucket.ErrInvalidKey, key, suffix, key[:len(key)-len(suffix)])
		}
	}
	if i := strings.Index(lower, LogSuffix+"/"); i >= 0 {
		return fmt.Errorf("%w %q: contains %q, which is reserved for the delta log of the key %q",
			bucket.ErrInvalidKey, key, LogSuffix+"/", key[:i])
	}
	return nil
}

// validateRestoreKey is ValidateKey for a restore, which reads and so may
// also read a previous snapshot, KEY.prev, to recover from it.
func validateRestoreKey(key string) error {
	if base, ok := strings.CutSuffix(key, PrevSuffix); ok && ValidateKey(base) == nil {
		return nil
	}
	return ValidateKey(key)
}
