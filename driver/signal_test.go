//go:build unix && cgo

package driver_test

import (
	"syscall"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
)

// CloseOnSignal closes the database, with its final flush, when the
// signal arrives.
func TestCloseOnSignal(t *testing.T) {
	db := mustOpen(t, "mem://signal/app.db?flush_interval=0")
	done := driver.CloseOnSignal(db, syscall.SIGUSR1)
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1), (2), (3)")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Close on signal: %v", err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("database still open after the signal")
	}
	if n := restoreCount(t, bucket.Mem("signal"), "app.db", "t"); n != 3 {
		t.Fatalf("bucket has %d rows after the signal's final flush, want 3", n)
	}
}
