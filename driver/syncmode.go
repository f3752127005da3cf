package driver

import (
	"fmt"
	"strings"
	"time"
)

// SyncMode is how a flush ships the database to the bucket.
type SyncMode int

const (
	// SyncFull uploads the whole database at KEY on every flush that
	// changed something: the format the Python original reads. The
	// default.
	SyncFull SyncMode = iota
	// SyncLog uploads only the pages that changed since the previous
	// flush, as one delta object beside KEY (KEY.log/SEQ), read straight
	// from the working copy's WAL; KEY stays a complete SQLite file (the
	// base), replaced by compaction once the deltas add up to half of it.
	// A restore applies the deltas after the base. In a rollback-journal
	// mode (_journal_mode=DELETE, TRUNCATE or PERSIST) there is no WAL to
	// read: each flush then finds the changed pages by comparing a
	// snapshot with the image the bucket holds, which reads the whole
	// database but still uploads only what changed. See docs/FORMAT.md.
	SyncLog
)

var syncNames = []string{"full", "log"}

// defaultFlushInterval is the flush_interval a DSN with this sync mode
// gets when it gives none.
func (m SyncMode) defaultFlushInterval() time.Duration {
	if m == SyncLog {
		return DefaultLogFlushInterval
	}
	return DefaultFlushInterval
}

// String returns the DSN spelling of m.
func (m SyncMode) String() string {
	if m < 0 || int(m) >= len(syncNames) {
		return fmt.Sprintf("SyncMode(%d)", int(m))
	}
	return syncNames[m]
}

func parseSyncMode(s string) (SyncMode, error) {
	for i, n := range syncNames {
		if strings.EqualFold(s, n) {
			return SyncMode(i), nil
		}
	}
	return 0, fmt.Errorf("want full or log, got %q", s)
}
