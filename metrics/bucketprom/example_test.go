//go:build cgo

package bucketprom_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/metrics/bucketprom"
)

// Register a database's collector, flush, and read two of its series in
// the text format Prometheus scrapes. A server serves the registry with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func Example() {
	ctx := context.Background()
	defer bucket.ForgetMem("bucketprom-example")
	db, err := sql.Open("bucketsqlite", "mem://bucketprom-example/todos.db?flush_interval=0")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	c := bucketprom.NewCollector(db, bucketprom.WithDatabase("todos"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	if _, err := db.ExecContext(ctx, "CREATE TABLE todos(title TEXT)"); err != nil {
		log.Fatal(err)
	}
	if _, err := driver.Flush(ctx, db); err != nil { // uploads
		log.Fatal(err)
	}
	if _, err := driver.Flush(ctx, db); err != nil { // nothing new: skips
		log.Fatal(err)
	}
	text, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain,
		"bucketsqlite_flushes_total", "bucketsqlite_uploads_total")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(text))
	// Output:
	// # HELP bucketsqlite_flushes_total Flush attempts: periodic, explicit and final.
	// # TYPE bucketsqlite_flushes_total counter
	// bucketsqlite_flushes_total{database="todos"} 2
	// # HELP bucketsqlite_uploads_total Flushes that uploaded a snapshot.
	// # TYPE bucketsqlite_uploads_total counter
	// bucketsqlite_uploads_total{database="todos"} 1
}
