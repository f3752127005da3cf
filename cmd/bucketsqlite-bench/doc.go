// Command bucketsqlite-bench measures what bucketsqlite costs next to the
// plain operations it should cost about as much as, against a versitygw S3
// server on loopback, and prints one table.
//
//	go run ./cmd/bucketsqlite-bench                  # 256 MiB database, 5 runs
//	go run ./cmd/bucketsqlite-bench -large 1GiB      # adds the 1 GiB rows
//	go run ./cmd/bucketsqlite-bench -quick           # tiny databases, 1 run: a smoke test
//	go run ./cmd/bucketsqlite-bench -only flush -cpuprofile cpu.out   # then: go tool pprof cpu.out
//
// It starts its own versitygw (installing it with go install if it is
// missing, see internal/s3test), builds seeded, deterministic databases of
// the sizes given by the flags (a table of events with two indexes), and
// runs each scenario -runs times, alternating with its baseline so that
// both see the same machine:
//
//   - flush: driver.Flush of a changed database, against a single
//     PutObject of the same bytes through the same S3 client (with
//     keep_previous, against a CopyObject and a PutObject);
//   - idle flush: driver.Flush with nothing committed since the last one,
//     at the -small size and at the larger ones;
//   - restore: snapshot.RestoreFile (and the driver's first connection)
//     with the default full integrity check, against a GetObject into a
//     file followed by PRAGMA integrity_check;
//   - insert: autocommit inserts through sql.Open("bucketsqlite", ...),
//     against sql.Open("sqlite3", ...) on the same kind of file with the
//     same pragmas;
//   - commit p99: a writer committing every millisecond, its p99 commit
//     latency while a flush runs against its p99 with no flush, with a
//     temporary and with a persistent (local=) working copy;
//   - log: sync=log against sync=full and plain requests: a one-row
//     UPDATE's log flush against a full flush and a PutObject of the
//     delta's bytes; a restore of a base and 100 deltas against the
//     compacted base; commit p99 with a log flush every second; and the
//     pages a minute of log flushes shipped against the distinct pages
//     that changed;
//   - replica: a sync=log writer and a read replica (replica=true): the
//     bytes and time a one-row change costs the replica, how soon after
//     the writer's flush a replica query sees it (refresh_interval=1s), a
//     reader's query p99 while deltas are applied against its p99 while
//     none are, and the requests an idle replica makes;
//   - peak RSS: how much a flush and a restore of the largest database
//     raise the peak resident set (VmHWM, reset through
//     /proc/self/clear_refs), each measured in a child process of its own.
//
// Every row shows the median over the runs, its baseline's median, their
// ratio, the target and PASS or MISS. The machine is shared and noisy:
// compare ratios measured in the same run, never figures from two runs.
package main
