//go:build cgo

package driver

// SetLogPolicy makes compaction and WAL restarts happen at the given
// sizes, for tests; it returns a function that restores the defaults.
func SetLogPolicy(minBytes int64, deltas int, walBytes int64) (restore func()) {
	m, d, w := compactMinBytes, compactDeltas, walRestartBytes
	compactMinBytes, compactDeltas, walRestartBytes = minBytes, deltas, walBytes
	return func() { compactMinBytes, compactDeltas, walRestartBytes = m, d, w }
}
