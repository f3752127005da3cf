//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// The tests in this file each reproduce one way the first release lost an
// acknowledged write or replaced a good snapshot (issue 11), and fail on
// that release.

// safetyDB is a database on a directory bucket with a persistent working
// copy, reached through a faulty bucket.
type safetyDB struct {
	t     *testing.T
	dir   string // the directory bucket's root
	local string
	fb    *faulty.Bucket
}

func newSafetyDB(t *testing.T) *safetyDB {
	t.Helper()
	dir := t.TempDir()
	b, err := bucket.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &safetyDB{t: t, dir: dir, local: filepath.Join(t.TempDir(), "work.db"), fb: faulty.New(b)}
}

// open opens the database with key app.db (or keys[0]).
func (s *safetyDB) open(keys ...string) *sql.DB {
	s.t.Helper()
	cfg := driver.NewConfig()
	cfg.Key, cfg.FlushInterval, cfg.Local = "app.db", 0, s.local
	if len(keys) > 0 {
		cfg.Key = keys[0]
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(s.fb))
	if err != nil {
		s.t.Fatal(err)
	}
	return sql.OpenDB(c)
}

// bucketRows restores key from the directory bucket and counts t's rows;
// -1 when there is no snapshot.
func (s *safetyDB) bucketRows(key string) int {
	s.t.Helper()
	path := filepath.Join(s.t.TempDir(), "check.db")
	info, err := snapshot.RestoreFile(context.Background(), s.fb.Inner(), key, path, snapshot.RestoreOptions{})
	if err != nil {
		s.t.Fatalf("restore %s: %v", key, err)
	}
	if !info.Found {
		return -1
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// seed creates t with n rows and closes, so that the bucket and the
// working copy hold them.
func (s *safetyDB) seed(n int) {
	s.t.Helper()
	db := s.open()
	mustExec(s.t, db, "CREATE TABLE t(x INTEGER)")
	for range n {
		mustExec(s.t, db, "INSERT INTO t VALUES (1)")
	}
	if err := db.Close(); err != nil {
		s.t.Fatal(err)
	}
}

// aheadAfterFailedClose leaves the working copy with rows the bucket
// lacks, and a dirty record: the final flush's upload fails.
func (s *safetyDB) aheadAfterFailedClose() {
	s.t.Helper()
	s.seed(2)
	db := s.open()
	mustExec(s.t, db, "INSERT INTO t VALUES (1)")
	rule := s.fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(errors.New("injected outage")))
	if err := db.Close(); err == nil {
		s.t.Fatal("Close succeeded with every upload failing")
	}
	rule.Remove()
	if got := s.bucketRows("app.db"); got != 2 {
		s.t.Fatalf("the bucket has %d rows before the test, want 2", got)
	}
}

// Issue 11 #2: a "not found" from a bucket that cannot prove it exists (a
// missing bucket, an unknown access key) fails the first query and leaves
// the sync record alone; once the bucket answers again, nothing diverged.
func TestLocalNotFoundIsProvenBeforeUse(t *testing.T) {
	s := newSafetyDB(t)
	s.seed(2)
	record, err := os.ReadFile(s.local + "-bucketsqlite.json")
	if err != nil {
		t.Fatal(err)
	}
	stat := s.fb.Inject(faulty.Stat, faulty.Every, faulty.Fail(bucket.ErrNotFound))
	list := s.fb.Inject(faulty.List, faulty.Every, faulty.Fail(errors.New("NoSuchBucket")))
	db := s.open()
	if err := db.Ping(); err == nil {
		t.Fatal("the first query succeeded although the bucket cannot be listed")
	}
	db.Close()
	if stat.Fired() == 0 || list.Fired() == 0 {
		t.Fatalf("faults fired: stat %d, list %d", stat.Fired(), list.Fired())
	}
	if after, _ := os.ReadFile(s.local + "-bucketsqlite.json"); string(after) != string(record) {
		t.Fatalf("the sync record changed:\n%s\nwas\n%s", after, record)
	}
	s.fb.Clear()
	db = s.open()
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	if err := db.Close(); err != nil {
		t.Fatalf("once the bucket answers: %v", err)
	}
	if got := s.bucketRows("app.db"); got != 3 {
		t.Fatalf("the bucket has %d rows, want 3", got)
	}
}

// Issue 11 #3: an older copy of the working copy put back by hand (a
// backup restored, a volume snapshot rolled back) never replaces newer
// acknowledged data in the bucket.
func TestLocalOlderCopyPutBack(t *testing.T) {
	s := newSafetyDB(t)
	s.seed(2)
	old, err := os.ReadFile(s.local)
	if err != nil {
		t.Fatal(err)
	}
	db := s.open()
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.local, old, 0o600); err != nil {
		t.Fatal(err)
	}
	db = s.open()
	defer db.Close()
	_, err = db.Exec("INSERT INTO t VALUES (1)")
	if !errors.Is(err, driver.ErrDiverged) {
		t.Fatalf("writing to an older copy put back: %v, want ErrDiverged", err)
	}
	db.Close()
	if got := s.bucketRows("app.db"); got != 4 {
		t.Fatalf("the bucket has %d rows, want the 4 acknowledged", got)
	}
}

// Issue 11 #4: driver.Flush and db.Close before the first query still
// flush a working copy that is ahead of the bucket.
func TestLocalAheadFlushedBeforeFirstQuery(t *testing.T) {
	for _, how := range []string{"Flush", "Close"} {
		t.Run(how, func(t *testing.T) {
			s := newSafetyDB(t)
			s.aheadAfterFailedClose()
			db := s.open()
			if how == "Flush" {
				// The flush that starts on its own when the working copy
				// is ahead may come first: either way, once Flush
				// returns nil the bucket holds every row.
				if _, err := driver.Flush(context.Background(), db); err != nil {
					t.Fatalf("Flush before the first query: %v", err)
				}
				if got := s.bucketRows("app.db"); got != 3 {
					t.Fatalf("after Flush the bucket has %d rows, want the 3 committed", got)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if got := s.bucketRows("app.db"); got != 3 {
				t.Fatalf("the bucket has %d rows, want the 3 committed", got)
			}
		})
	}
}

// Issue 11 #5: a snapshot deleted from the bucket is uploaded again from a
// clean working copy.
func TestLocalSnapshotDeletedIsUploaded(t *testing.T) {
	s := newSafetyDB(t)
	s.seed(2)
	for _, key := range []string{"app.db", "app.db.prev"} {
		if err := s.fb.Inner().Delete(context.Background(), key); err != nil && !errors.Is(err, bucket.ErrNotFound) {
			t.Fatal(err)
		}
	}
	db := s.open()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.bucketRows("app.db"); got != 2 {
		t.Fatalf("the bucket has %d rows, want the working copy's 2", got)
	}
}

// Issue 11 #7: a working copy that belongs to another key is refused,
// naming the local= parameter, and nothing is written under the new key.
func TestLocalOfAnotherKeyIsRefused(t *testing.T) {
	s := newSafetyDB(t)
	s.seed(2)
	db := s.open("b.db")
	err := db.Ping()
	var de *driver.DSNError
	if !errors.As(err, &de) || de.Param != "local" {
		t.Fatalf("opening a.db's working copy as b.db: %v, want a DSN error naming local", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.bucketRows("b.db"); got != -1 {
		t.Fatalf("b.db has a snapshot with %d rows; want none", got)
	}
}

// A crash-recovered working copy that is ahead of the bucket is checked
// before it can replace anything: a damaged one is an error, and the
// bucket's snapshot stays.
func TestLocalDamagedIsNotUploaded(t *testing.T) {
	s := newSafetyDB(t)
	s.aheadAfterFailedClose()
	f, err := os.OpenFile(s.local, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Page 2 onwards: the table's b-tree pages become garbage.
	info, _ := f.Stat()
	junk := strings.Repeat("\xa5", int(info.Size()-4096))
	if _, err := f.WriteAt([]byte(junk), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Remove(s.local + "-wal")
	os.Remove(s.local + "-shm")
	db := s.open()
	if err := db.Ping(); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("a damaged working copy ahead of the bucket: %v, want ErrCorrupt", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close after the refusal: %v", err)
	}
	if got := s.bucketRows("app.db"); got != 2 {
		t.Fatalf("the bucket has %d rows, want its 2", got)
	}
}

// A working copy deleted while the database is open: new pooled
// connections fail instead of creating an empty database beside it.
func TestWorkingCopyDeletedWhileOpen(t *testing.T) {
	s := newSafetyDB(t)
	s.seed(1)
	db := s.open()
	defer db.Close()
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	db.SetMaxIdleConns(0)
	for _, side := range []string{"", "-wal", "-shm"} {
		os.Remove(s.local + side)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1)"); err == nil {
		t.Fatal("a new connection to a deleted working copy succeeded")
	}
	if _, err := os.Stat(s.local); err == nil {
		t.Fatal("a new, empty working copy was created")
	}
}

// Issue 11 #9: driver.Flush honours its context while another flush holds
// the database; Close does not wait forever behind a restore started
// without a deadline.
func TestBlockingCallsHonourContext(t *testing.T) {
	t.Run("Flush behind a flush", func(t *testing.T) {
		s := newSafetyDB(t)
		s.seed(1)
		db := s.open()
		defer db.Close()
		mustExec(t, db, "INSERT INTO t VALUES (1)")
		hang := s.fb.Inject(faulty.Upload, 1, faulty.Hang())
		first, cancelFirst := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := driver.Flush(first, db); done <- err }()
		for hang.Fired() == 0 {
			select {
			case err := <-done:
				t.Fatalf("the first flush returned %v before its upload hung", err)
			default:
				waitABit()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		if _, err := driver.Flush(ctx, db); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Flush behind a hung flush: %v, want its context's deadline", err)
		}
		cancelFirst()
		<-done
	})
	t.Run("Close behind a restore", func(t *testing.T) {
		s := newSafetyDB(t)
		s.seed(1)
		os.Remove(s.local)
		hang := s.fb.Inject(faulty.Download, 1, faulty.Hang())
		db := s.open()
		done := make(chan error, 1)
		go func() { done <- db.Ping() }()
		for hang.Fired() == 0 {
			waitABit()
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close behind a hung restore: %v", err)
		}
		if err := <-done; err == nil {
			t.Fatal("the hung restore succeeded")
		}
	})
}

// Issue 11 #10: a temporary working copy left by a killed process (its
// lock no longer held) is removed by the next start; one in use is not.
func TestStaleTempWorkingCopiesRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	mem := "stale-temp"
	defer bucket.ForgetMem(mem)
	live, err := sql.Open("bucketsqlite", "mem://"+mem+"/live.db?flush_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := live.Ping(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, "bucketsqlite-stale")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"db.sqlite", "db.sqlite-bucketsqlite.lock"} {
		if err := os.WriteFile(filepath.Join(stale, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("bucketsqlite", "mem://"+mem+"/app.db?flush_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stale working copy is still there: %v", err)
	}
	st, err := driver.GetStats(live)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.LocalPath); err != nil {
		t.Fatalf("the live working copy was removed: %v", err)
	}
	if _, err := live.Exec("CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
}

// waitABit yields while a test polls for another goroutine's progress.
func waitABit() { time.Sleep(time.Millisecond) }

// Issue 11 #1: journal modes that can leave a damaged database after a
// rollback or a crash are refused, naming the parameter: a flush would
// upload the damage over a good snapshot.
func TestUnsafeJournalModesRefused(t *testing.T) {
	for _, mode := range []string{"OFF", "MEMORY", "off", "memory"} {
		for _, name := range []string{"_journal_mode", "_journal"} {
			_, err := driver.ParseDSN("mem://unsafe/app.db?" + name + "=" + mode)
			var de *driver.DSNError
			if !errors.As(err, &de) || de.Param != name {
				t.Errorf("%s=%s: %v, want a DSN error naming %s", name, mode, err, name)
			}
		}
		cfg := driver.NewConfig()
		cfg.Key = "app.db"
		cfg.SQLite = map[string][]string{"_journal_mode": {strings.ToUpper(mode)}}
		if _, err := driver.NewConnector(cfg, driver.WithBucket(bucket.Mem("unsafe"))); !errors.Is(err, driver.ErrInvalidDSN) {
			t.Errorf("a hand-built Config with _journal_mode=%s: %v, want ErrInvalidDSN", mode, err)
		}
	}
}

// Issue 11 #11: database/sql calls the driver's Close once, so a second
// db.Close returns nil after a failed one; GetStats keeps the error.
func TestFailedCloseErrorKept(t *testing.T) {
	s := newSafetyDB(t)
	s.seed(1)
	db := s.open()
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	s.fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(errors.New("injected outage")))
	first := db.Close()
	if first == nil {
		t.Fatal("Close succeeded with every upload failing")
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v (database/sql returns nil)", err)
	}
	st, err := driver.GetStats(db)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastError == nil || !strings.Contains(first.Error(), st.LastError.Error()) && !errors.Is(first, st.LastError) {
		t.Fatalf("GetStats after the failed Close: LastError %v; Close said %v", st.LastError, first)
	}
}
