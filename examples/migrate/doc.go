// Migrate applies schema migrations to a bucketsqlite database with either
// of the two common Go migration tools, then records a note and lists the
// notes. The migrations are embedded in the binary (migrations/), and the
// version they reach is kept in the database itself, so in the bucket's
// snapshot: the next run, on this machine or another, restores it and
// applies only what is new.
//
//	go run ./examples/migrate -tool goose -note hello
//	go run ./examples/migrate -tool goose -note again        # applies nothing: already at version 2
//	go run ./examples/migrate -tool golang-migrate -note hi  # another database, its own version table
//
// With goose (github.com/pressly/goose/v3) the program builds a
// goose.Provider on its *sql.DB; with golang-migrate
// (github.com/golang-migrate/migrate/v4) it wraps the *sql.DB with the
// database/sqlite3 driver's WithInstance and reads the migrations through
// source/iofs.
//
// Neither tool's Close is called: both close the *sql.DB they were given
// (goose's Provider.Close and golang-migrate's Migrate.Close, through the
// sqlite3 driver's Close), which for bucketsqlite is the final flush. The
// program keeps using its database after migrating and closes it once, at
// the end, checking that error.
//
// By default each tool has its own database in the directory bucket
// data/bucket under the current directory (migrate-goose.db,
// migrate-golang-migrate.db); -dsn selects another, such as
// s3://my-bucket/app.db.
package main
