//go:build !cgo

package snapshot

// bucketsqlite needs cgo: snapshots are made with SQLite's online backup API
// through github.com/mattn/go-sqlite3. Build with CGO_ENABLED=1 and a C
// compiler on PATH.
var _ = bucketsqlite_snapshot_requires_cgo_set_CGO_ENABLED_1
