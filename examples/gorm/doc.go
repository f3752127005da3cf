// Gorm uses a bucketsqlite database through GORM (gorm.io/gorm with the
// gorm.io/driver/sqlite dialector): AutoMigrate of two models joined by a
// foreign key, create, read with Preload, update, delete, an explicit
// driver.Flush and a clean shutdown. Each run adds a book to an author's
// list and prints every author with their books.
//
// Run it from any directory; by default the bucket is the directory
// data/bucket under the current directory:
//
//	go run ./examples/gorm -author Tolkien -title "The Hobbit"
//	go run ./examples/gorm -author Tolkien -title "The Silmarillion"
//	go run ./examples/gorm -author Tolkien -delete "The Hobbit"
//
// Three things matter with GORM, and the program shows each:
//
//   - sqlite.Dialector{DriverName: "bucketsqlite", DSN: dsn}: without
//     DriverName, GORM opens the DSN with go-sqlite3 itself and writes a
//     plain local file, with no bucket and no error. The program checks
//     with driver.GetStats that the pool is a bucketsqlite one.
//   - _foreign_keys=1 in the DSN: SQLite enforces foreign keys per
//     connection, so a PRAGMA run through GORM reaches one pooled
//     connection only.
//   - GORM has no Close: get the *sql.DB with gormDB.DB() and close it,
//     checking its error (the final flush). Without it nothing reaches
//     the bucket before the next periodic flush.
//
// -dsn selects another bucket, such as
// s3://my-bucket/gorm.db?_foreign_keys=1 (credentials from the standard AWS
// environment variables).
package main
