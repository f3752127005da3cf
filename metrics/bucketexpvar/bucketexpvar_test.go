//go:build cgo

package bucketexpvar_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"expvar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/metrics/bucketexpvar"
)

func open(t *testing.T, name string) *sql.DB {
	t.Helper()
	t.Cleanup(func() { bucket.ForgetMem(name) })
	db, err := sql.Open("bucketsqlite", "mem://"+name+"/app.db?flush_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	return db
}

// decoded is the JSON a variable reports, as a client reads it.
type decoded struct {
	Restored               bool      `json:"restored"`
	RestoredBytes          int64     `json:"restored_bytes"`
	RestoreDurationSeconds float64   `json:"restore_duration_seconds"`
	Flushes                int64     `json:"flushes"`
	Uploads                int64     `json:"uploads"`
	Skips                  int64     `json:"skips"`
	Failures               int64     `json:"failures"`
	BytesUploaded          int64     `json:"bytes_uploaded"`
	LastFlush              time.Time `json:"last_flush"`
	LastUpload             time.Time `json:"last_upload"`
	LastHash               string    `json:"last_hash"`
	ETag                   string    `json:"etag"`
	LastError              string    `json:"last_error"`
	Conflicted             bool      `json:"conflicted"`
	LocalPath              string    `json:"local_path"`
	Error                  string    `json:"error"`
}

func decode(t *testing.T, s string) decoded {
	t.Helper()
	var d decoded
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return d
}

// The variable follows the database through a flush, as /debug/vars
// serves it.
func TestPublishServedByExpvarHandler(t *testing.T) {
	db := open(t, "bucketexpvar-publish")
	const name = "bucketexpvar-test.publish"
	if _, err := bucketexpvar.Publish(name, db); err != nil {
		t.Fatal(err)
	}
	read := func() (decoded, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		expvar.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/vars", nil))
		var all map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &all); err != nil {
			t.Fatalf("/debug/vars is not JSON: %v", err)
		}
		raw, ok := all[name]
		if !ok {
			t.Fatalf("/debug/vars has no %q", name)
		}
		return decode(t, string(raw)), string(raw)
	}

	before, raw := read()
	if before.Flushes != 0 || before.Uploads != 0 || before.LocalPath == "" || before.Error != "" {
		t.Errorf("before a flush: %s", raw)
	}
	for _, absent := range []string{"last_flush", "last_upload", "last_error", "last_hash", "etag"} {
		if strings.Contains(raw, `"`+absent+`"`) {
			t.Errorf("before a flush, %s is present: %s", absent, raw)
		}
	}

	res, err := driver.Flush(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := driver.GetStats(db)
	if err != nil {
		t.Fatal(err)
	}
	after, raw := read()
	if after.Flushes != 1 || after.Uploads != 1 || after.BytesUploaded != res.BytesWritten ||
		after.LastHash != res.SnapshotHash || after.ETag != st.ETag || after.LastError != "" ||
		!after.LastFlush.Equal(st.LastFlush) || !after.LastUpload.Equal(st.LastUpload) || after.LocalPath != st.LocalPath {
		t.Errorf("after a flush: %s\nwant the stats %+v", raw, st)
	}
}

// Publishing a name again re-points the variable at the new database
// rather than panicking as expvar.Publish does.
func TestPublishAgainRepoints(t *testing.T) {
	const name = "bucketexpvar-test.again"
	a := open(t, "bucketexpvar-again-a")
	b := open(t, "bucketexpvar-again-b")
	va, err := bucketexpvar.Publish(name, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := driver.Flush(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if d := decode(t, va.String()); d.Flushes != 1 {
		t.Fatalf("a's variable: %s", va.String())
	}
	vb, err := bucketexpvar.Publish(name, b)
	if err != nil {
		t.Fatalf("publishing a name again: %v", err)
	}
	if vb != va || expvar.Get(name) != expvar.Var(va) {
		t.Fatalf("publishing a name again made a new variable")
	}
	if d := decode(t, expvar.Get(name).String()); d.Flushes != 0 {
		t.Errorf("after Publish(b), the variable reports a's stats: %s", va.String())
	}
}

// A name held by another variable is an error, not a panic, and is left
// alone.
func TestPublishNameTaken(t *testing.T) {
	const name = "bucketexpvar-test.taken"
	other := expvar.NewInt(name)
	other.Set(42)
	_, err := bucketexpvar.Publish(name, open(t, "bucketexpvar-taken"))
	if !errors.Is(err, bucketexpvar.ErrNameTaken) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Publish over an expvar.Int = %v, want ErrNameTaken naming %q", err, name)
	}
	if got := expvar.Get(name).String(); got != "42" {
		t.Errorf("the other variable now reads %s", got)
	}
}

// Func is the stats as a plain expvar.Func; a database of another driver
// reports an error member rather than zeros.
func TestFunc(t *testing.T) {
	db := open(t, "bucketexpvar-func")
	if _, err := driver.Flush(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if d := decode(t, bucketexpvar.Func(db).String()); d.Uploads != 1 || d.Error != "" {
		t.Errorf("Func(db) = %s", bucketexpvar.Func(db).String())
	}

	plain, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if d := decode(t, bucketexpvar.Func(plain).String()); d.Error != driver.ErrNotBucketSQLite.Error() {
		t.Errorf("Func(a go-sqlite3 database) = %s", bucketexpvar.Func(plain).String())
	}
	var zero bucketexpvar.Var
	if d := decode(t, zero.String()); d.Error == "" {
		t.Errorf("the zero Var = %s, want an error member", zero.String())
	}
}
