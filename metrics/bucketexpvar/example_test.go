//go:build cgo

package bucketexpvar_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"expvar"
	"fmt"
	"log"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/metrics/bucketexpvar"
)

// Publish a database's statistics, flush, and read the variable as
// /debug/vars would serve it.
func ExamplePublish() {
	ctx := context.Background()
	defer bucket.ForgetMem("bucketexpvar-example")
	db, err := sql.Open("bucketsqlite", "mem://bucketexpvar-example/todos.db?flush_interval=0")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := bucketexpvar.Publish("bucketsqlite.example", db); err != nil {
		log.Fatal(err)
	}

	if _, err := db.ExecContext(ctx, "CREATE TABLE todos(title TEXT)"); err != nil {
		log.Fatal(err)
	}
	if _, err := driver.Flush(ctx, db); err != nil {
		log.Fatal(err)
	}

	var st struct {
		Flushes int64 `json:"flushes"`
		Uploads int64 `json:"uploads"`
	}
	if err := json.Unmarshal([]byte(expvar.Get("bucketsqlite.example").String()), &st); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("flushes: %d, uploads: %d\n", st.Flushes, st.Uploads)
	// Output:
	// flushes: 1, uploads: 1
}
