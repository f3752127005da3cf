// Package bucketexpvar publishes a bucketsqlite database's flush
// statistics (driver.Stats) with the standard library's expvar package,
// for programs that want them on /debug/vars without a metrics library.
//
// # Publishing
//
// Publish registers a variable under a name of your choice; expvar's
// handler serves it, beside memstats and cmdline, as a JSON object:
//
//	db, err := sql.Open("bucketsqlite", "s3://my-bucket/todos.db")
//	...
//	if _, err := bucketexpvar.Publish("bucketsqlite.todos", db); err != nil {
//		return err // the name is taken by another variable
//	}
//	mux.Handle("GET /debug/vars", expvar.Handler())
//
// Importing expvar also registers /debug/vars on http.DefaultServeMux; a
// server with its own mux mounts expvar.Handler as above.
//
//	$ curl -s localhost:8080/debug/vars | jq '."bucketsqlite.todos"'
//	{
//	  "restored": true,
//	  "restored_bytes": 8192,
//	  "restore_duration_seconds": 0.0021,
//	  "flushes": 3,
//	  "uploads": 1,
//	  "skips": 2,
//	  "failures": 0,
//	  "bytes_uploaded": 8192,
//	  "last_flush": "2026-05-01T10:32:00.123Z",
//	  "last_upload": "2026-05-01T10:31:00.456Z",
//	  "last_hash": "9f86d0…",
//	  "etag": "\"5d41…\"",
//	  "conflicted": false,
//	  "local_path": "/tmp/bucketsqlite-…/todos.db"
//	}
//
// The members are driver.Stats' fields in snake case. Times are RFC 3339
// in UTC and left out while zero (no flush yet); last_hash, etag,
// last_error and local_path are left out while empty; the restore
// duration is in seconds. A db that was not opened with the bucketsqlite
// driver reports {"error": "..."}.
//
// # Names are process-wide, and published for good
//
// expvar keeps one namespace per process, never forgets a name, and
// panics when a name is published twice. Publish instead returns an error
// matching ErrNameTaken when the name holds a variable it did not
// publish, and re-points its own variable when called again with the same
// name: a program (or a test) that closes its database and opens it
// again calls Publish again with the new *sql.DB. Func is the plain
// building block, an expvar.Func, for code that publishes by itself.
package bucketexpvar
