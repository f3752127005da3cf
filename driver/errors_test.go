//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// An error says each thing once: the operation and the database's key
// once, then the cause; errors.Is and errors.As still see every layer.
func TestConflictErrorReadsOnce(t *testing.T) {
	mem := "errors-once"
	defer bucket.ForgetMem(mem)
	open := func() *sql.DB {
		cfg, err := driver.ParseDSN("mem://" + mem + "/app.db?flush_interval=0")
		if err != nil {
			t.Fatal(err)
		}
		// Two handles on one key in one process need two bucket values.
		c, err := driver.NewConnector(cfg, driver.WithBucket(faulty.New(bucket.Mem(mem))))
		if err != nil {
			t.Fatal(err)
		}
		return sql.OpenDB(c)
	}
	ctx := context.Background()
	a := open()
	defer a.Close()
	mustExec(t, a, "CREATE TABLE t(x)")
	if _, err := driver.Flush(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := open()
	defer b.Close()
	mustExec(t, b, "INSERT INTO t VALUES (1)")
	mustExec(t, a, "INSERT INTO t VALUES (2)")
	if _, err := driver.Flush(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, err := driver.Flush(ctx, b)
	if !errors.Is(err, snapshot.ErrConflict) || !errors.Is(err, bucket.ErrPrecondition) {
		t.Fatalf("flush of the second writer: %v, want ErrConflict and ErrPrecondition", err)
	}
	var se *snapshot.Error
	var be *bucket.Error
	if !errors.As(err, &se) || !errors.As(err, &be) {
		t.Fatalf("%v: the snapshot and bucket errors are not in the chain", err)
	}
	msg := err.Error()
	for _, once := range []string{`app.db`, "bucketsqlite", "snapshot changed by another writer", "precondition failed"} {
		if n := strings.Count(msg, once); n != 1 {
			t.Errorf("%q appears %d times in %q", once, n, msg)
		}
	}
	if !strings.HasPrefix(msg, "bucketsqlite: flush mem://"+mem+"/app.db: ") {
		t.Errorf("%q does not start with the operation and the database", msg)
	}
}
