//go:build cgo

package driver_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
)

// The _pragma=NAME(VALUE) form users copy from other drivers' docs (GORM's
// among them) works: a pragma go-sqlite3 has a parameter for becomes that
// parameter, any other runs on every pooled connection, and those that
// would break the driver's guarantees are refused, naming _pragma.
func TestPragmaForm(t *testing.T) {
	mem := "pragma-form"
	defer bucket.ForgetMem(mem)
	db := mustOpen(t, "mem://"+mem+"/app.db?flush_interval=0&_pragma=foreign_keys(1)&_pragma=temp_store(2)&_pragma=cache_size(-4000)")
	defer db.Close()
	mustExec(t, db, "CREATE TABLE parent(id INTEGER PRIMARY KEY)")
	mustExec(t, db, "CREATE TABLE child(p INTEGER REFERENCES parent(id))")
	db.SetMaxOpenConns(3)
	ctx := context.Background()
	for i := range 3 { // several pooled connections, each with the pragmas
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "INSERT INTO child VALUES (7)"); err == nil {
			t.Fatalf("connection %d: foreign_keys(1) is not applied", i)
		}
		var store int
		if err := conn.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&store); err != nil || store != 2 {
			t.Fatalf("connection %d: temp_store = %d, %v; want 2", i, store, err)
		}
	}

	cfg, err := driver.ParseDSN("mem://x/app.db?_pragma=foreign_keys(1)&_pragma=temp_store(2)")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SQLite.Get("_foreign_keys") != "1" || !reflect.DeepEqual(cfg.Pragmas, []string{"temp_store=2"}) {
		t.Fatalf("parsed as %v and %v", cfg.SQLite, cfg.Pragmas)
	}
	back, err := driver.ParseDSN(cfg.FormatDSN())
	if err != nil || !reflect.DeepEqual(back, cfg) {
		t.Fatalf("FormatDSN %q parses back to %+v, %v", cfg.FormatDSN(), back, err)
	}
}

// Pragmas and parameters from other drivers that cannot work here are
// errors that name them and say what to use instead.
func TestOtherDriversForms(t *testing.T) {
	for _, tc := range []struct{ dsn, param, hint string }{
		{"mem://x/a.db?_pragma=journal_mode(OFF)", "_pragma", "MEMORY and OFF"},
		{"mem://x/a.db?_pragma=journal_mode(wal)&_journal_mode=DELETE", "_pragma", "given twice"},
		{"mem://x/a.db?_pragma=locking_mode(EXCLUSIVE)", "_pragma", "lock the flusher out"},
		{"mem://x/a.db?_pragma=writable_schema(1)", "_pragma", "refused"},
		{"mem://x/a.db?_pragma=temp_store(2%3BDROP)", "_pragma", "value"},
		{"mem://x/a.db?_pragma=foreign_keys", "_pragma", "NAME(VALUE)"},
		{"mem://x/a.db?cache=shared", "cache", "shared by every handle"},
		{"mem://x/a.db?mode=ro", "mode", "_query_only=1"},
		{"mem://x/a.db?parseTime=true", "parseTime", "time.Time"},
		{"mem://x/a.db?_time_format=sqlite", "_time_format", "_loc"},
		{":memory:", "dsn", "mem://NAME/KEY"},
		{"file::memory:?cache=shared", "dsn", "mem://NAME/KEY"},
	} {
		_, err := driver.ParseDSN(tc.dsn)
		var de *driver.DSNError
		if !errors.As(err, &de) || de.Param != tc.param || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: %v; want a DSN error naming %s and saying %q", tc.dsn, err, tc.param, tc.hint)
		}
	}
}
