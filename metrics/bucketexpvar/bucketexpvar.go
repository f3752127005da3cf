//go:build cgo

package bucketexpvar

import (
	"database/sql"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buckethead/bucketsqlite/driver"
)

// ErrNameTaken means Publish was given a name that an expvar.Var other
// than a *Var already holds. expvar.Publish would panic; Publish returns
// this error instead.
var ErrNameTaken = errors.New("bucketexpvar: expvar name already taken")

// stats is the JSON form of driver.Stats.
type stats struct {
	Restored               bool      `json:"restored"`
	RestoredBytes          int64     `json:"restored_bytes"`
	RestoreDurationSeconds float64   `json:"restore_duration_seconds"`
	Flushes                int64     `json:"flushes"`
	Uploads                int64     `json:"uploads"`
	Skips                  int64     `json:"skips"`
	Failures               int64     `json:"failures"`
	BytesUploaded          int64     `json:"bytes_uploaded"`
	LastFlush              time.Time `json:"last_flush,omitzero"`
	LastUpload             time.Time `json:"last_upload,omitzero"`
	LastHash               string    `json:"last_hash,omitempty"`
	ETag                   string    `json:"etag,omitempty"`
	LastError              string    `json:"last_error,omitempty"`
	Conflicted             bool      `json:"conflicted"`
	LocalPath              string    `json:"local_path,omitempty"`

	// A read replica's (replica=true); absent for a writer.
	Replica          bool      `json:"replica,omitempty"`
	Seq              uint64    `json:"seq,omitempty"`
	Refreshes        int64     `json:"refreshes,omitempty"`
	RefreshFailures  int64     `json:"refresh_failures,omitempty"`
	DeltasDownloaded int64     `json:"deltas_downloaded,omitempty"`
	BytesDownloaded  int64     `json:"bytes_downloaded,omitempty"`
	DeltasApplied    int64     `json:"deltas_applied,omitempty"`
	Rebases          int64     `json:"rebases,omitempty"`
	LastRefresh      time.Time `json:"last_refresh,omitzero"`
	WriterFlush      time.Time `json:"writer_flush,omitzero"`
	LagSeconds       float64   `json:"lag_seconds,omitempty"`
}

// value is what Func and Var report for db: its stats, or an object with
// one "error" member if they cannot be read.
func value(db *sql.DB) any {
	if db == nil {
		return map[string]string{"error": "no database"}
	}
	st, err := driver.GetStats(db)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	out := stats{
		Restored:               st.Restored,
		RestoredBytes:          st.RestoredBytes,
		RestoreDurationSeconds: st.RestoreDuration.Seconds(),
		Flushes:                st.Flushes,
		Uploads:                st.Uploads,
		Skips:                  st.Skips,
		Failures:               st.Failures,
		BytesUploaded:          st.BytesUploaded,
		LastFlush:              st.LastFlush.UTC(),
		LastUpload:             st.LastUpload.UTC(),
		LastHash:               st.LastHash,
		ETag:                   st.ETag,
		Conflicted:             st.Conflicted,
		LocalPath:              st.LocalPath,
	}
	if st.LastError != nil {
		out.LastError = st.LastError.Error()
	}
	if st.Replica {
		out.Replica, out.Seq, out.Refreshes, out.RefreshFailures = true, st.Seq, st.Refreshes, st.RefreshFailures
		out.DeltasDownloaded, out.BytesDownloaded, out.DeltasApplied, out.Rebases = st.DeltasDownloaded, st.BytesDownloaded, st.DeltasApplied, st.Rebases
		out.LastRefresh, out.WriterFlush, out.LagSeconds = st.LastRefresh.UTC(), st.WriterFlush.UTC(), st.Lag.Seconds()
	}
	return out
}

// Func returns an expvar.Func whose value is db's statistics, read with
// driver.GetStats each time the variable is read, as a JSON object (see
// the package documentation for its members). Publish it yourself with
// expvar.Publish, which panics if the name is taken, or use Publish.
func Func(db *sql.DB) expvar.Func {
	return func() any { return value(db) }
}

// Var is an expvar.Var reporting the statistics of one database, which
// Set can change: a program that reopens its database points the same
// published name at the new *sql.DB. The zero Var reports
// {"error":"no database"}. A Var is safe for concurrent use.
type Var struct {
	db atomic.Pointer[sql.DB]
}

// Set makes v report db's statistics.
func (v *Var) Set(db *sql.DB) { v.db.Store(db) }

// Value returns the value String encodes: a JSON-encodable struct of the
// database's statistics, or a map with one "error" member.
func (v *Var) Value() any { return value(v.db.Load()) }

// String returns the database's statistics as a JSON object; it
// implements expvar.Var.
func (v *Var) String() string {
	b, err := json.Marshal(v.Value())
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return string(b)
}

// publishMu makes Publish's look-up and publication one step for every
// caller of Publish.
var publishMu sync.Mutex

// Publish publishes db's statistics as the expvar variable name, which
// /debug/vars (expvar.Handler) then serves, and returns its Var.
//
// expvar cannot unpublish a name, and expvar.Publish panics on a name
// published twice. Publish does neither: if name already holds a *Var
// (from an earlier Publish, e.g. before the database was reopened),
// Publish points that Var at db and returns it; if name holds any other
// variable, it returns an error matching ErrNameTaken and publishes
// nothing. Names are shared by the whole process, so a library should
// derive its names from something the application chooses.
//
// Only the Publish calls of this package are serialized: an
// expvar.Publish of the same name by other code between Publish's
// look-up and its publication still panics, as expvar does.
func Publish(name string, db *sql.DB) (*Var, error) {
	publishMu.Lock()
	defer publishMu.Unlock()
	switch old := expvar.Get(name).(type) {
	case nil:
		v := new(Var)
		v.Set(db)
		expvar.Publish(name, v)
		return v, nil
	case *Var:
		old.Set(db)
		return old, nil
	default:
		return nil, fmt.Errorf("%w: %q holds a %T", ErrNameTaken, name, old)
	}
}
