// Server is a small HTTP JSON to-do service on bucketsqlite, with the
// graceful shutdown a database kept in a bucket needs: on SIGINT or
// SIGTERM it stops accepting requests, waits for those in flight, then
// closes the database, which runs the final flush. If that flush fails
// the server exits non-zero, and the error names the working copy that
// still holds every write.
//
// Run it from any directory; by default the bucket is the directory
// data/bucket under the current directory:
//
//	go run ./examples/server
//	go run ./examples/server -addr 127.0.0.1:9090 -dsn 's3://my-bucket/todos.db?region=eu-west-1'
//
// and talk to it:
//
//	curl -s localhost:8080/todos -d '{"title":"buy milk"}'
//	curl -s -X POST localhost:8080/todos/1/done
//	curl -s localhost:8080/todos
//	curl -s -X POST localhost:8080/flush
//	curl -s localhost:8080/stats
//
// Operators get the same statistics where they look for them: Prometheus
// metrics (package metrics/bucketprom, with the database label "todos",
// beside the Go runtime's and the process's) and expvar (package
// metrics/bucketexpvar, the variable bucketsqlite.todos):
//
//	curl -s localhost:8080/metrics | grep ^bucketsqlite_
//	curl -s localhost:8080/debug/vars
//
// A second Ctrl-C while the final flush runs ends the process at once;
// the writes since the last flush are then lost.
package main
