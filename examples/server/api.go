package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"expvar"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/metrics/bucketexpvar"
	"github.com/buckethead/bucketsqlite/metrics/bucketprom"
	"github.com/buckethead/bucketsqlite/snapshot"
)

const schema = `CREATE TABLE IF NOT EXISTS todos (
	id      INTEGER PRIMARY KEY,
	title   TEXT NOT NULL,
	done    BOOLEAN NOT NULL DEFAULT FALSE,
	created TEXT NOT NULL
)`

// todo is a to-do item, as stored and as sent.
type todo struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Done    bool   `json:"done"`
	Created string `json:"created"`
}

const todoColumns = "id, title, done, created"

func (t *todo) scan(row interface{ Scan(...any) error }) error {
	return row.Scan(&t.ID, &t.Title, &t.Done, &t.Created)
}

// api serves the to-do list out of db.
type api struct{ db *sql.DB }

// databaseName names the database in the metrics: the value of the
// Prometheus database label, and the expvar variable bucketsqlite.todos.
const databaseName = "todos"

// newHandler returns the API, with the database's flush statistics for
// operators on GET /metrics (Prometheus) and GET /debug/vars (expvar).
func newHandler(db *sql.DB) (http.Handler, error) {
	a := &api{db}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /todos", a.list)
	mux.HandleFunc("POST /todos", a.create)
	mux.HandleFunc("POST /todos/{id}/done", a.done)
	mux.HandleFunc("GET /stats", a.stats)
	mux.HandleFunc("POST /flush", a.flush)

	// A registry of our own rather than the global one, so that the
	// handler can be built more than once in a process (as the tests do).
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		bucketprom.NewCollector(db, bucketprom.WithDatabase(databaseName)),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// expvar's names are process-wide: publishing again (a second run in
	// one process) points the variable at the new database.
	if _, err := bucketexpvar.Publish("bucketsqlite."+databaseName, db); err != nil {
		return nil, err
	}
	mux.Handle("GET /debug/vars", expvar.Handler())
	return mux, nil
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	rows, err := a.db.QueryContext(r.Context(), "SELECT "+todoColumns+" FROM todos ORDER BY id")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	defer rows.Close()
	todos := []todo{}
	for rows.Next() {
		var t todo
		if err := t.scan(rows); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		todos = append(todos, t)
	}
	if err := rows.Err(); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, todos)
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if in.Title == "" {
		writeError(w, http.StatusBadRequest, errors.New("title is required"))
		return
	}
	var t todo
	err := t.scan(a.db.QueryRowContext(r.Context(),
		"INSERT INTO todos(title, created) VALUES (?, ?) RETURNING "+todoColumns,
		in.Title, time.Now().UTC().Format(time.RFC3339)))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (a *api) done(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, errors.New("id must be an integer"))
		return
	}
	var t todo
	err = t.scan(a.db.QueryRowContext(r.Context(),
		"UPDATE todos SET done = TRUE WHERE id = ? RETURNING "+todoColumns, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		writeError(w, http.StatusNotFound, errors.New("no such to-do"))
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, t)
	}
}

// stats is the JSON form of driver.Stats.
type stats struct {
	Restored      bool      `json:"restored"`
	RestoredBytes int64     `json:"restored_bytes"`
	Flushes       int64     `json:"flushes"`
	Uploads       int64     `json:"uploads"`
	Skips         int64     `json:"skips"`
	Failures      int64     `json:"failures"`
	BytesUploaded int64     `json:"bytes_uploaded"`
	LastFlush     time.Time `json:"last_flush,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	Conflicted    bool      `json:"conflicted"`
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	st, err := driver.GetStats(a.db)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := stats{
		Restored:      st.Restored,
		RestoredBytes: st.RestoredBytes,
		Flushes:       st.Flushes,
		Uploads:       st.Uploads,
		Skips:         st.Skips,
		Failures:      st.Failures,
		BytesUploaded: st.BytesUploaded,
		LastFlush:     st.LastFlush,
		Conflicted:    st.Conflicted,
	}
	if st.LastError != nil {
		out.LastError = st.LastError.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) flush(w http.ResponseWriter, r *http.Request) {
	res, err := driver.Flush(r.Context(), a.db)
	switch {
	case errors.Is(err, snapshot.ErrConflict):
		// Someone else replaced the snapshot: never overwrite it.
		writeError(w, http.StatusConflict, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{
			"uploaded": res.Uploaded,
			"idle":     res.Idle,
			"bytes":    res.BytesWritten,
			"sha256":   res.SnapshotHash,
		})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
