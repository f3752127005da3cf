package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/buckethead/bucketsqlite/driver"
)

// These tests use GORM the way applications do, on bucketsqlite databases
// in memory buckets (mem://NAME/KEY, shared by name within the process,
// so a database closed and opened again finds its snapshot).

// memBuckets numbers memory buckets, so that each test, also with
// -count=N, has a new one.
var memBuckets atomic.Int64

// memDSN returns a DSN in a new memory bucket, with params.
func memDSN(t *testing.T, params string) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("mem://%s-%d/app.db%s", name, memBuckets.Add(1), params)
}

// openGorm opens dsn through GORM on bucketsqlite and migrates the
// example's models. The caller closes the *sql.DB.
func openGorm(t *testing.T, dsn string) (*gorm.DB, *sql.DB) {
	t.Helper()
	gdb, err := gorm.Open(sqlite.Dialector{DriverName: "bucketsqlite", DSN: dsn}, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("gorm.Open: %v", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := gdb.AutoMigrate(&Author{}, &Book{}); err != nil {
		sqlDB.Close()
		t.Fatalf("AutoMigrate: %v", err)
	}
	return gdb, sqlDB
}

// mustClose closes sqlDB, which runs the final flush, and fails t if that
// fails.
func mustClose(t *testing.T, sqlDB *sql.DB) {
	t.Helper()
	if err := sqlDB.Close(); err != nil {
		t.Fatalf("close (final flush): %v", err)
	}
}

// A transaction that returns an error rolls back, a nested one rolls back
// to its savepoint, and what was committed, only that, is in the bucket
// after Close: a database opened again sees it.
func TestGormTransactions(t *testing.T) {
	dsn := memDSN(t, "?_foreign_keys=1")
	gdb, sqlDB := openGorm(t, dsn)
	errAbort := errors.New("abort")

	err := gdb.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Author{Name: "Tolkien"}).Error; err != nil {
			return err
		}
		// A nested transaction is a savepoint: its failure undoes only it.
		err := tx.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&Author{Name: "Nobody"}).Error; err != nil {
				return err
			}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Errorf("nested transaction: %v; want errAbort", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("transaction: %v", err)
	}
	err = gdb.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Author{Name: "Rolled Back"}).Error; err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("failing transaction: %v; want errAbort", err)
	}
	// A unique index violation inside a transaction rolls all of it back.
	err = gdb.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Author{Name: "Le Guin"}).Error; err != nil {
			return err
		}
		return tx.Create(&Author{Name: "Tolkien"}).Error
	})
	if err == nil || !strings.Contains(err.Error(), "UNIQUE constraint failed") {
		t.Fatalf("duplicate name: %v; want a UNIQUE constraint error", err)
	}
	mustClose(t, sqlDB)

	gdb, sqlDB = openGorm(t, dsn)
	defer mustClose(t, sqlDB)
	st, err := driver.GetStats(sqlDB)
	if err != nil || !st.Restored {
		t.Fatalf("reopened: restored=%t, %v; want a restore", st.Restored, err)
	}
	var names []string
	if err := gdb.Model(&Author{}).Order("name").Pluck("name", &names).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "Tolkien" {
		t.Errorf("after reopening: authors %q; want only the committed Tolkien", names)
	}
}

// Associations: a create that saves an author with their books, Append,
// Count, Preload, and a delete that the foreign key cascades to the books.
func TestGormAssociations(t *testing.T) {
	gdb, sqlDB := openGorm(t, memDSN(t, "?_foreign_keys=1"))
	defer mustClose(t, sqlDB)

	a := Author{Name: "Tolkien", Books: []Book{{Title: "The Hobbit"}, {Title: "The Silmarillion"}}}
	if err := gdb.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.Books[0].AuthorID != a.ID || a.Books[1].ID == 0 {
		t.Fatalf("create did not fill the keys: %+v", a)
	}
	if err := gdb.Model(&a).Association("Books").Append(&Book{Title: "Unfinished Tales"}); err != nil {
		t.Fatal(err)
	}
	if n := gdb.Model(&a).Association("Books").Count(); n != 3 {
		t.Errorf("Count: %d books; want 3", n)
	}
	var got Author
	if err := gdb.Preload("Books", func(db *gorm.DB) *gorm.DB { return db.Order("title") }).First(&got, a.ID).Error; err != nil {
		t.Fatal(err)
	}
	if len(got.Books) != 3 || got.Books[0].Title != "The Hobbit" || got.Books[2].Title != "Unfinished Tales" {
		t.Errorf("Preload: %+v", got.Books)
	}

	// A plain Delete of the author: SQLite's ON DELETE CASCADE, enforced
	// because the DSN sets _foreign_keys=1, deletes the books.
	if err := gdb.Delete(&Author{ID: a.ID}).Error; err != nil {
		t.Fatal(err)
	}
	var books int64
	if err := gdb.Model(&Book{}).Count(&books).Error; err != nil {
		t.Fatal(err)
	}
	if books != 0 {
		t.Errorf("%d books left after deleting their author", books)
	}
}

// _foreign_keys=1 in the DSN applies to every pooled connection. A PRAGMA
// run through GORM reaches one connection only: the others do not
// enforce foreign keys.
func TestGormForeignKeysPerConnection(t *testing.T) {
	ctx := context.Background()
	// fkOn reports, for two connections held at once (so two different
	// ones), whether each enforces foreign keys.
	fkOn := func(t *testing.T, sqlDB *sql.DB, pragma bool) [2]bool {
		t.Helper()
		var on [2]bool
		var conns [2]*sql.Conn
		for i := range conns {
			c, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		if pragma {
			if _, err := conns[0].ExecContext(ctx, "PRAGMA foreign_keys = ON"); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range conns {
			if err := c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on[i]); err != nil {
				t.Fatal(err)
			}
		}
		return on
	}

	t.Run("dsn", func(t *testing.T) {
		gdb, sqlDB := openGorm(t, memDSN(t, "?_foreign_keys=1"))
		defer mustClose(t, sqlDB)
		if on := fkOn(t, sqlDB, false); on != [2]bool{true, true} {
			t.Errorf("foreign_keys per connection: %v; want both on", on)
		}
		err := gdb.Create(&Book{Title: "Orphan", AuthorID: 42}).Error
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
			t.Errorf("book with no author: %v; want a FOREIGN KEY error", err)
		}
	})
	t.Run("pragma", func(t *testing.T) {
		_, sqlDB := openGorm(t, memDSN(t, ""))
		defer mustClose(t, sqlDB)
		if on := fkOn(t, sqlDB, true); on != [2]bool{true, false} {
			t.Errorf("foreign_keys per connection after a PRAGMA on one: %v; want on, off", on)
		}
	})
}

// Without DriverName, GORM opens the DSN with go-sqlite3 itself: a plain
// local file, no bucket, and no error. driver.GetStats is the check.
func TestGormWithoutDriverNameIsAPlainFile(t *testing.T) {
	dir := t.TempDir()
	gdb, err := gorm.Open(sqlite.Open("file:"+dir+"/app.db?flush_interval=1s"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("gorm.Open without DriverName: %v", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := gdb.AutoMigrate(&Author{}, &Book{}); err != nil {
		t.Fatal(err)
	}
	if err := gdb.Create(&Author{Name: "Tolkien"}).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := driver.GetStats(sqlDB); !errors.Is(err, driver.ErrNotBucketSQLite) {
		t.Errorf("GetStats: %v; want ErrNotBucketSQLite", err)
	}
	if err := sqlDB.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// A plain SQLite file where the DSN pointed, and no snapshot metadata
	// beside it: nothing went through a bucket.
	if _, err := os.Stat(filepath.Join(dir, "app.db")); err != nil || strings.Contains(strings.Join(names, " "), ".meta") {
		t.Errorf("directory holds %q; want a plain app.db and no metadata", names)
	}
}

// With an s3:// DSN and no DriverName, go-sqlite3 takes the DSN for a file
// name in a directory that does not exist ("s3:"): gorm.Open fails, and
// its error does not mention the missing DriverName.
func TestGormWithoutDriverNameS3(t *testing.T) {
	_, err := gorm.Open(sqlite.Open("s3://my-bucket/app.db?region=auto"), &gorm.Config{Logger: logger.Discard})
	if err == nil || !strings.Contains(err.Error(), "unable to open database file") {
		t.Fatalf("gorm.Open of an s3:// DSN without DriverName: %v; want go-sqlite3's unable to open database file", err)
	}
}

// GORM's own test suite opens the same DSN twice, and so do applications
// (a second *gorm.DB for migrations, a library with its own): both share
// the one database in the bucket, each sees the other's commits, and each
// Close flushes what was committed.
func TestGormSameDSNTwice(t *testing.T) {
	dsn := memDSN(t, "?flush_interval=0&_foreign_keys=1")
	a, sqlA := openGorm(t, dsn)
	b, sqlB := openGorm(t, dsn)
	if err := a.Create(&Author{Name: "Ursula"}).Error; err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := b.Model(&Author{}).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("the second handle counts %d authors, %v; want the first's 1", n, err)
	}
	if err := b.Create(&Author{Name: "Octavia"}).Error; err != nil {
		t.Fatal(err)
	}
	mustClose(t, sqlB)
	if err := a.Model(&Author{}).Count(&n).Error; err != nil || n != 2 {
		t.Fatalf("after the second handle closed the first counts %d, %v; want 2", n, err)
	}
	mustClose(t, sqlA)
	c, sqlC := openGorm(t, dsn)
	defer mustClose(t, sqlC)
	if err := c.Model(&Author{}).Count(&n).Error; err != nil || n != 2 {
		t.Fatalf("reopened: %d authors, %v; want 2", n, err)
	}
}
