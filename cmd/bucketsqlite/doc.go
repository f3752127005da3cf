// Command bucketsqlite operates a SQLite database that the bucketsqlite
// driver keeps in a bucket, without writing Go: restore it (as of now, or
// of a past time or sequence), list and verify what the bucket holds,
// push a local SQLite file as the database, and compact or prune its delta
// log on demand.
//
// # Install
//
//	go install github.com/buckethead/bucketsqlite/cmd/bucketsqlite@latest
//
// It needs cgo and a C compiler, as the driver does.
//
// # Databases
//
// Each command names the database by the driver's DSN (see
// driver.ParseDSN): s3://BUCKET/KEY?region=...&endpoint=... or
// file:///DIR/KEY. S3 credentials come from the standard AWS environment
// variables, shared files and profiles; they never appear in a DSN or in
// the command's output. A mem:// DSN is refused: such a bucket lives
// inside one process.
//
// # Commands
//
//	bucketsqlite restore DSN FILE [--at TIME | --seq N] [--force]
//
// writes the database to FILE, verified as the driver verifies a restore
// (each object's SHA-256, the deltas' checksums, PRAGMA integrity_check),
// atomically. With --at, the state as of the last flush at or before TIME
// (RFC 3339, or a negative duration from now: --at -2h); with --seq, as of
// sequence N. How far back is possible is the writer's retention= DSN
// parameter. An existing FILE is kept unless --force.
//
//	bucketsqlite ls DSN [--json]
//
// lists the base, KEY.prev, the archived bases and the deltas: kind,
// sequence, flush time, size, writer (hostname/pid) and key. --json
// prints a snapshot.History.
//
//	bucketsqlite verify DSN [--at TIME | --seq N]
//
// downloads and checks what the restore would use, writing no file. It
// exits 1 naming the object at fault.
//
//	bucketsqlite push FILE DSN [--force]
//
// makes FILE the database in the bucket: a new base. It is refused if a
// database is there, unless --force; the replaced one is then kept at
// KEY.prev (unless keep_previous=false) and, with a retention, archived. A
// writer still running on the old database is fenced off.
//
//	bucketsqlite compact DSN
//	bucketsqlite prune DSN [--retention D] [--dry-run]
//
// do what a writer in sync=log does on its own: fold the deltas into a new
// base; delete the archived bases and deltas no restore within the
// retention needs. compact first checks that the bucket enforces
// conditional writes, which make it safe beside a running writer, and
// refuses otherwise (unless --unsafe, for when no writer runs).
//
// Each command is a thin layer over package snapshot: snapshot.RestoreFile
// (with RestoreOptions.At or Seq), snapshot.ReadHistory, snapshot.Verify,
// snapshot.Push, snapshot.Compact and snapshot.Prune do the same from Go.
//
// # Output and exit codes
//
// Results go to standard output, errors to standard error. Transfers over
// 4 MiB show a progress bar (bytes, rate, time left) when standard error
// is a terminal, and nothing otherwise; -q silences it. The exit code is 0
// on success, 1 on a failure (an error, a problem verify found, a refusal
// such as an existing FILE), and 2 on bad usage or an unusable DSN.
package main
