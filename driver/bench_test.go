//go:build cgo

package driver_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// BenchmarkLocalCommit measures an autocommit INSERT on a persistent
// working copy with go-sqlite3's NORMAL synchronous and with FULL, the
// default with local= (every commit fsyncs the WAL, so a power loss keeps
// it): go test -run '^$' -bench LocalCommit ./driver/
func BenchmarkLocalCommit(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(sync, func(b *testing.B) {
			mem := "bench-local-" + sync
			defer bucket.ForgetMem(mem)
			local := filepath.Join(b.TempDir(), "work.db")
			db := mustOpen(b, fmt.Sprintf("mem://%s/app.db?flush_interval=0&local=%s&_synchronous=%s", mem, local, sync))
			defer db.Close()
			mustExec(b, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
			b.ResetTimer()
			for i := range b.N {
				mustExec(b, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint(i))
			}
		})
	}
}
