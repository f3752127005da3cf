package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
)

// Open a database kept in a bucket, write, flush, and read the rows back
// through a new handle, which restores them from the bucket.
func Example() {
	ctx := context.Background()
	// A mem:// bucket lives in process memory until the process exits or
	// the bucket is forgotten; s3:// and file:// buckets are durable.
	defer bucket.ForgetMem("example")

	db, err := sql.Open("bucketsqlite", "mem://example/notes.db")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE notes(body TEXT)"); err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO notes VALUES (?)", "hello, bucket"); err != nil {
		log.Fatal(err)
	}
	res, err := driver.Flush(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("uploaded:", res.Uploaded)
	// Close runs the final flush; always check its error.
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}

	db, err = sql.Open("bucketsqlite", "mem://example/notes.db")
	if err != nil {
		log.Fatal(err)
	}
	var body string
	if err := db.QueryRowContext(ctx, "SELECT body FROM notes").Scan(&body); err != nil {
		log.Fatal(err)
	}
	st, err := driver.GetStats(db)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored:", st.Restored)
	fmt.Println(body)
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// uploaded: true
	// restored: true
	// hello, bucket
}

// Flush uploads a snapshot only when something was committed since the
// last flush; otherwise it costs nothing.
func ExampleFlush() {
	ctx := context.Background()
	defer bucket.ForgetMem("example-flush")
	db, err := sql.Open("bucketsqlite", "mem://example-flush/app.db?flush_interval=0")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"); err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		res, err := driver.Flush(ctx, db)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("flush %d: uploaded=%t idle=%t\n", i, res.Uploaded, res.Idle)
	}
	// Output:
	// flush 1: uploaded=true idle=false
	// flush 2: uploaded=false idle=true
}

// GetStats reports what the database did with its bucket, for logs,
// dashboards and health checks.
func ExampleGetStats() {
	ctx := context.Background()
	defer bucket.ForgetMem("example-stats")
	db, err := sql.Open("bucketsqlite", "mem://example-stats/app.db?flush_interval=0")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(x)"); err != nil {
		log.Fatal(err)
	}
	if _, err := driver.Flush(ctx, db); err != nil {
		log.Fatal(err)
	}
	if err := db.Close(); err != nil { // nothing changed: the final flush is a skip
		log.Fatal(err)
	}
	st, err := driver.GetStats(db)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("restored=%t flushes=%d uploads=%d skips=%d failures=%d last error=%v\n",
		st.Restored, st.Flushes, st.Uploads, st.Skips, st.Failures, st.LastError)
	// Output:
	// restored=false flushes=2 uploads=1 skips=1 failures=0 last error=<nil>
}

// NewConnector takes what a DSN cannot carry: here a bucket value of your
// own (any bucket.Bucket), which the program can then look into.
func ExampleNewConnector() {
	ctx := context.Background()
	b := bucket.NewMemory()

	cfg := driver.NewConfig()
	cfg.Key = "apps/todo.db"
	cfg.FlushInterval = 0 // flush on Flush and Close only
	c, err := driver.NewConnector(cfg, driver.WithBucket(b))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	if _, err := db.ExecContext(ctx, "CREATE TABLE todos(title TEXT)"); err != nil {
		log.Fatal(err)
	}
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}

	objects, err := bucket.ListAll(ctx, b, "")
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range objects {
		fmt.Println(o.Key)
	}
	// Output:
	// apps/todo.db
}

// ParseDSN reads every setting of a DSN, and names the parameter at fault
// in one it cannot use. Credentials never go in a DSN.
func ExampleParseDSN() {
	cfg, err := driver.ParseDSN("s3://my-bucket/apps/todo.db?endpoint=https://ACCOUNT.r2.cloudflarestorage.com&region=auto&flush_interval=30s")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Bucket.Scheme, cfg.Bucket.Bucket, cfg.Key)
	fmt.Println(cfg.Bucket.Endpoint, cfg.Bucket.Region, cfg.FlushInterval)
	fmt.Println(cfg) // FormatDSN: the parameters sorted, defaults left out

	_, err = driver.ParseDSN("s3://my-bucket/apps/todo.db?flush_intervall=30s")
	fmt.Println(err)
	fmt.Println(errors.Is(err, driver.ErrInvalidDSN))
	// Output:
	// s3 my-bucket apps/todo.db
	// https://ACCOUNT.r2.cloudflarestorage.com auto 30s
	// s3://my-bucket/apps/todo.db?endpoint=https://ACCOUNT.r2.cloudflarestorage.com&flush_interval=30s&region=auto
	// bucketsqlite: invalid DSN: flush_intervall: unknown parameter
	// true
}

// A command-line program opts in to a final flush on Ctrl-C or SIGTERM.
// Servers should rather stop accepting requests first, then call
// db.Close: see examples/server.
func ExampleCloseOnSignal() {
	db, err := sql.Open("bucketsqlite", "file:data/bucket/app.db")
	if err != nil {
		log.Fatal(err)
	}
	done := driver.CloseOnSignal(db)

	// ... work with db until a signal arrives ...

	if err := <-done; err != nil {
		log.Fatalf("final flush: %v", err)
	}
}
