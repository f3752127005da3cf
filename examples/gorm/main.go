package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/buckethead/bucketsqlite/driver" // registers the "bucketsqlite" driver
)

// defaultDSN is a directory bucket relative to the current directory, with
// foreign keys enforced on every connection.
const defaultDSN = "file:data/bucket/gorm.db?_foreign_keys=1"

// Author has many books; deleting an author deletes their books (the
// foreign key's ON DELETE CASCADE, enforced because the DSN sets
// _foreign_keys=1).
type Author struct {
	ID    uint
	Name  string `gorm:"not null;uniqueIndex"`
	Runs  int    `gorm:"not null;default:0"` // how many runs named this author
	Books []Book `gorm:"constraint:OnUpdate:CASCADE,OnDelete:CASCADE"`
}

// Book belongs to an author through AuthorID, a foreign key to authors.id.
type Book struct {
	ID       uint
	Title    string `gorm:"not null"`
	AuthorID uint   `gorm:"not null;index"`
}

func main() {
	// Ctrl-C or SIGTERM cancels ctx: the query running fails, run returns,
	// and its deferred Close still runs the final flush. (Without this, a
	// signal ends the process at once, and the writes since the last
	// flush never reach the bucket.)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends the process at once
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gorm:", err)
		os.Exit(1)
	}
}

// run is the program, apart from main so that tests can run it. Its error
// includes the final flush's: the deferred Close sets it.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("gorm", flag.ContinueOnError)
	dsn := fs.String("dsn", defaultDSN, "bucketsqlite DSN; the default is relative to the current directory")
	author := fs.String("author", "Tolkien", "the author this run records")
	title := fs.String("title", "", "a book to add to the author's list")
	del := fs.String("delete", "", "a book to delete from the author's list")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// DriverName is what puts the database in the bucket: without it GORM
	// opens the DSN with go-sqlite3 directly, a plain local file.
	// gorm.Open queries and pings the database, so the restore from the
	// bucket happens here, and a restore error comes back here (GORM has
	// closed the pool already).
	gdb, err := gorm.Open(sqlite.Dialector{DriverName: "bucketsqlite", DSN: *dsn}, &gorm.Config{
		Logger: logger.Discard, // errors come back as values
	})
	if err != nil {
		return fmt.Errorf("open (restore): %w", err)
	}
	// GORM has no Close: close the *sql.DB under it. Its Close runs the
	// final flush; without it, nothing written since the last flush
	// reaches the bucket.
	sqlDB, err := gdb.DB()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sqlDB.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close (final flush): %w", cerr))
		}
	}()
	// Fails with driver.ErrNotBucketSQLite if DriverName was forgotten.
	st, err := driver.GetStats(sqlDB)
	if err != nil {
		return fmt.Errorf("%w (is sqlite.Dialector.DriverName \"bucketsqlite\"?)", err)
	}
	if st.Restored {
		fmt.Fprintf(stdout, "restored: %d bytes from the bucket\n", st.RestoredBytes)
	} else {
		fmt.Fprintln(stdout, "restored: nothing to restore")
	}

	gdb = gdb.WithContext(ctx)
	if err := gdb.AutoMigrate(&Author{}, &Book{}); err != nil {
		return fmt.Errorf("automigrate: %w", err)
	}
	if err := record(gdb, *author, *title, *del, stdout); err != nil {
		return err
	}
	if err := list(gdb, stdout); err != nil {
		return err
	}

	// Push now rather than at the next flush_interval. Close would flush
	// anyway; a long-running program calls this after important writes.
	res, err := driver.Flush(ctx, sqlDB)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	fmt.Fprintf(stdout, "flushed: uploaded=%t, %d bytes\n", res.Uploaded, res.BytesWritten)
	return nil
}

// record finds or creates the author, counts the run, adds title and
// deletes del, all in one transaction.
func record(db *gorm.DB, name, title, del string, stdout io.Writer) error {
	return db.Transaction(func(tx *gorm.DB) error {
		var a Author
		if err := tx.Where(Author{Name: name}).FirstOrCreate(&a).Error; err != nil {
			return err
		}
		if err := tx.Model(&a).Update("runs", gorm.Expr("runs + ?", 1)).Error; err != nil {
			return err
		}
		if title != "" {
			b := Book{Title: title, AuthorID: a.ID}
			if err := tx.Create(&b).Error; err != nil {
				return err
			}
			fmt.Fprintf(stdout, "added: book %d, %q\n", b.ID, b.Title)
		}
		if del != "" {
			res := tx.Where("author_id = ? AND title = ?", a.ID, del).Delete(&Book{})
			if res.Error != nil {
				return res.Error
			}
			fmt.Fprintf(stdout, "deleted: %d book(s) titled %q\n", res.RowsAffected, del)
		}
		return nil
	})
}

// list prints every author with their books, loaded with Preload.
func list(db *gorm.DB, stdout io.Writer) error {
	var authors []Author
	err := db.Preload("Books", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).
		Order("name").Find(&authors).Error
	if err != nil {
		return err
	}
	for _, a := range authors {
		fmt.Fprintf(stdout, "author %s (%d run(s)):\n", a.Name, a.Runs)
		for _, b := range a.Books {
			fmt.Fprintf(stdout, "  book %d: %s\n", b.ID, b.Title)
		}
	}
	return nil
}
