//go:build cgo

package driver_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// openReplica opens key on b as a read replica that refreshes only when
// told (refresh_interval=1h: the loop never runs in a test, and a
// refresh counts as punctual, so it makes one request when idle).
func openReplica(t *testing.T, b bucket.Bucket, key, params string) *sql.DB {
	t.Helper()
	if !strings.Contains(params, "refresh_interval=") {
		params += "&refresh_interval=1h"
	}
	cfg, err := driver.ParseDSN("mem://unused/" + key + "?replica=true" + params)
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(b))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func mustRefresh(t *testing.T, db *sql.DB) driver.Stats {
	t.Helper()
	if err := driver.Refresh(context.Background(), db); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return replicaStats(t, db)
}

func replicaStats(t *testing.T, db *sql.DB) driver.Stats {
	t.Helper()
	st, err := driver.GetStats(db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A replica restores the writer's base and log, then follows it: every
// refresh applies the new deltas, a pooled connection held across the
// applies and a pinned *sql.Conn see them, and a refresh with no news
// costs one GET.
func TestReplicaFollowsWriter(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	w, _ := openLog(t, fb, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	for i := range 500 {
		mustExec(t, w, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(i), 30))
	}
	mustFlush(t, w)
	mustExec(t, w, "INSERT INTO t(v) VALUES ('one delta')")
	mustFlush(t, w)

	r := openReplica(t, fb, "app.db", "")
	r.SetMaxOpenConns(1) // one pooled connection, reused across applies
	if got := countRows(t, r, "t"); got != 501 {
		t.Fatalf("replica sees %d rows, want 501", got)
	}
	st := replicaStats(t, r)
	if !st.Replica || st.Seq != 1 || !st.Restored {
		t.Fatalf("stats after restore: %+v", st)
	}
	for round := 1; round <= 5; round++ {
		mustExec(t, w, "UPDATE t SET v = ? WHERE x = ?", fmt.Sprint("round ", round), round)
		mustExec(t, w, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("new ", round))
		mustFlush(t, w)
		st := mustRefresh(t, r)
		if st.Seq != uint64(1+round) || st.DeltasApplied != int64(round) || st.WriterFlush.IsZero() || st.LastApply <= 0 {
			t.Fatalf("round %d: stats %+v", round, st)
		}
		if got, want := dumpT(t, r), dumpT(t, w); got != want {
			t.Fatalf("round %d: replica and writer differ", round)
		}
	}
	// A schema change reaches a connection that has the old schema.
	mustExec(t, w, "CREATE TABLE u(y)")
	mustExec(t, w, "INSERT INTO u VALUES (42)")
	mustFlush(t, w)
	mustRefresh(t, r)
	if got := countRows(t, r, "u"); got != 1 {
		t.Fatalf("replica sees %d rows of u, want 1", got)
	}
	// Idle: one GET per refresh, nothing else.
	mustRefresh(t, r) // past any HEAD the first refreshes made
	before := fb.Calls(faulty.Any)
	for range 10 {
		mustRefresh(t, r)
	}
	if n := fb.Calls(faulty.Any) - before; n != 10 {
		t.Errorf("10 idle refreshes made %d requests, want 10", n)
	}
	var ok string
	if err := r.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}

// A replica refuses writes with SQLite's read-only error, and Flush on it
// does nothing.
func TestReplicaRefusesWrites(t *testing.T) {
	b := bucket.NewMemory()
	w, _ := openLog(t, b, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	r := openReplica(t, b, "app.db", "")
	_, err := r.Exec("INSERT INTO t VALUES (1)")
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrReadonly {
		t.Fatalf("insert on a replica: %v; want SQLite's read-only error", err)
	}
	t.Logf("the error a write gets: %v", err)
	res, err := driver.Flush(context.Background(), r)
	if err != nil || !res.Idle {
		t.Fatalf("Flush on a replica: %+v, %v; want Idle, nil", res, err)
	}
	if err := driver.Refresh(context.Background(), w); !errors.Is(err, driver.ErrNotReplica) {
		t.Fatalf("Refresh on a writer: %v; want ErrNotReplica", err)
	}
}

// A transaction open across a refresh sees one state throughout: the
// apply waits for it, and the next query after it sees the new state.
func TestReplicaTransactionSeesOneState(t *testing.T) {
	b := bucket.NewMemory()
	w, _ := openLog(t, b, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustExec(t, w, "INSERT INTO t VALUES (1)")
	mustFlush(t, w)
	r := openReplica(t, b, "app.db", "")
	countRows(t, r, "t") // restored now
	mustExec(t, w, "INSERT INTO t VALUES (2)")
	mustFlush(t, w)

	tx, err := r.Begin()
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("tx sees %d rows, want 1", n)
	}
	done := make(chan error, 1)
	go func() { done <- driver.Refresh(context.Background(), r) }()
	for range 20 {
		if n := count(); n != 1 {
			t.Fatalf("tx sees %d rows during a refresh, want 1", n)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		// The apply gave up waiting for the transaction: the next one
		// goes through.
		t.Logf("refresh during the transaction: %v", err)
		mustRefresh(t, r)
	}
	if n := countRows(t, r, "t"); n != 2 {
		t.Fatalf("after the transaction the replica sees %d rows, want 2", n)
	}
}

// A damaged delta leaves the replica on its last good state, with the
// error in Stats; once the object is sound again, the replica goes on.
func TestReplicaCorruptDelta(t *testing.T) {
	b := bucket.NewMemory()
	w, _ := openLog(t, b, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	r := openReplica(t, b, "app.db", "")
	countRows(t, r, "t") // restored now
	mustExec(t, w, "INSERT INTO t VALUES (1)")
	mustFlush(t, w)
	key := snapshot.LogKey("app.db", 1)
	good := readObject(t, b, key)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	a, _ := b.Stat(ctx, key)
	if _, err := b.Upload(ctx, key, bytesReader(bad), int64(len(bad)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := driver.Refresh(ctx, r)
		if !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("refresh with a damaged delta: %v; want ErrCorrupt", err)
		}
	}
	st := replicaStats(t, r)
	if st.RefreshFailures != 2 || !errors.Is(st.LastError, snapshot.ErrCorrupt) || st.Seq != 0 {
		t.Fatalf("stats: %+v", st)
	}
	if n := countRows(t, r, "t"); n != 0 {
		t.Fatalf("replica sees %d rows, want its last good state (0)", n)
	}
	if _, err := b.Upload(ctx, key, bytesReader(good), int64(len(good)), bucket.WriteOptions{Metadata: a.Metadata}); err != nil {
		t.Fatal(err)
	}
	st = mustRefresh(t, r)
	if st.Seq != 1 || st.LastError != nil || countRows(t, r, "t") != 1 {
		t.Fatalf("after repair: %+v", st)
	}
}

// Compaction while a replica is behind: within the retention window the
// replica catches up with deltas alone; past it (its next delta deleted)
// it restores the new base, once. The replica is one that refreshes only
// when told (refresh_interval=0), so each refresh looks at the base too:
// one that polls on time does so every 60 polls (see headEvery).
func TestReplicaCompactionBehind(t *testing.T) {
	defer driver.SetLogPolicy(1, 4, 16<<20)()
	fb := faulty.New(bucket.NewMemory())
	w, _ := openLog(t, fb, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	mustFlush(t, w)
	r := openReplica(t, fb, "app.db", "&refresh_interval=0")
	countRows(t, r, "t")
	write := func(n int) {
		for range n {
			mustExec(t, w, "INSERT INTO t(v) VALUES (randomblob(100))")
			mustFlush(t, w)
		}
	}
	write(5) // one compaction: the replica's deltas are all still there
	st := mustRefresh(t, r)
	if st.Rebases != 0 || dumpT(t, r) != dumpT(t, w) {
		t.Fatalf("behind by one compaction: %+v", st)
	}
	write(12) // several: the replica's next delta is gone
	st = mustRefresh(t, r)
	if st.Rebases != 1 || dumpT(t, r) != dumpT(t, w) {
		t.Fatalf("behind by several compactions: %+v", st)
	}
	write(3)
	st = mustRefresh(t, r)
	if st.Rebases != 1 || dumpT(t, r) != dumpT(t, w) {
		t.Fatalf("after the rebase: %+v", st)
	}
}

// A replica with local= restarted on the same disk goes on from its
// sequence, downloading only the deltas since.
func TestReplicaLocalResume(t *testing.T) {
	b := bucket.NewMemory()
	w, _ := openLog(t, b, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	for range 300 {
		mustExec(t, w, "INSERT INTO t(v) VALUES (randomblob(200))")
	}
	mustFlush(t, w)
	local := filepath.Join(t.TempDir(), "replica.db")
	cfg := "&local=" + local
	r := openReplica(t, b, "app.db", cfg)
	countRows(t, r, "t")
	first := replicaStats(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, w, "INSERT INTO t(v) VALUES ('while the replica was down')")
	mustFlush(t, w)
	r = openReplica(t, b, "app.db", cfg)
	if got, want := dumpT(t, r), dumpT(t, w); got != want {
		t.Fatal("resumed replica differs from the writer")
	}
	st := replicaStats(t, r)
	if st.Restored || st.Seq != 1 || st.BytesDownloaded >= first.BytesDownloaded/4 {
		t.Fatalf("resumed replica: %+v (first open downloaded %d bytes)", st, first.BytesDownloaded)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// A replica opened before the writer's first flush fails to open, saying
// so (bucket.ErrNotFound), and opens once there is a database.
func TestReplicaBeforeFirstFlush(t *testing.T) {
	b := bucket.NewMemory()
	r := openReplica(t, b, "app.db", "")
	if err := r.Ping(); !errors.Is(err, bucket.ErrNotFound) || !strings.Contains(err.Error(), "writer's first flush") {
		t.Fatalf("replica of nothing: %v; want ErrNotFound saying a writer must flush first", err)
	}
	w, _ := openLog(t, b, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	if err := r.Ping(); err != nil {
		t.Fatalf("replica after the writer's first flush: %v", err)
	}
}

// The DSN parameters replica and refresh_interval round-trip, and bad
// values name their parameter.
func TestReplicaDSN(t *testing.T) {
	cfg, err := driver.ParseDSN("s3://b/app.db?replica=true&refresh_interval=250ms")
	if err != nil || !cfg.Replica || cfg.RefreshInterval != 250*time.Millisecond {
		t.Fatalf("parse: %+v, %v", cfg, err)
	}
	again, err := driver.ParseDSN(cfg.FormatDSN())
	if err != nil || again.FormatDSN() != cfg.FormatDSN() || !again.Replica {
		t.Fatalf("round trip via %q: %+v, %v", cfg.FormatDSN(), again, err)
	}
	if d := driver.NewConfig().RefreshInterval; d != time.Second {
		t.Fatalf("default refresh_interval %v", d)
	}
	// A writer's DSN with replica=true added is a replica's.
	if _, err := driver.ParseDSN("s3://b/app.db?sync=log&flush_interval=1s&replica=true"); err != nil {
		t.Fatalf("a writer's DSN plus replica=true: %v", err)
	}
	for dsn, param := range map[string]string{
		"s3://b/app.db?replica=perhaps":                   "replica",
		"s3://b/app.db?replica=true&refresh_interval=-1s": "refresh_interval",
		"s3://b/app.db?refresh_interval=soon":             "refresh_interval",
	} {
		_, err := driver.ParseDSN(dsn)
		var de *driver.DSNError
		if !errors.As(err, &de) || de.Param != param {
			t.Errorf("ParseDSN(%q) = %v; want an error naming %s", dsn, err, param)
		}
	}
}

// A next delta that does not follow the replica's state while the base
// did not change is a damaged log: ErrCorrupt, and no download of the
// base, which could not help.
func TestReplicaBrokenChain(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	w, _ := openLog(t, fb, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	r := openReplica(t, fb, "app.db", "")
	countRows(t, r, "t")
	mustExec(t, w, "INSERT INTO t VALUES (1)")
	mustFlush(t, w)
	key := snapshot.LogKey("app.db", 1)
	d, err := snapshot.DecodeDelta(bytesReader(readObject(t, fb, key)))
	if err != nil {
		t.Fatal(err)
	}
	d.PreChecksum ^= 1
	var buf bytes.Buffer
	if _, err := d.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := fb.Upload(ctx, key, bytesReader(buf.Bytes()), int64(buf.Len()), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	downloads := fb.Calls(faulty.Download)
	if err := driver.Refresh(ctx, r); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("refresh over a delta that does not chain: %v; want ErrCorrupt", err)
	}
	if n := fb.Calls(faulty.Download) - downloads; n != 1 {
		t.Fatalf("the refresh made %d downloads, want 1 (the delta; not the base)", n)
	}
	if st := replicaStats(t, r); st.Rebases != 0 || countRows(t, r, "t") != 0 {
		t.Fatalf("after a broken chain: %+v", st)
	}
}

// A replica of a base without a log (a writer in sync=full) sees the
// base, and a new one once KEY's ETag changes.
func TestReplicaOfPlainSnapshot(t *testing.T) {
	b := bucket.NewMemory()
	cfg, err := driver.ParseDSN("mem://unused/app.db?flush_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg, driver.WithBucket(b))
	if err != nil {
		t.Fatal(err)
	}
	w := sql.OpenDB(c)
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	r := openReplica(t, b, "app.db", "")
	if n := countRows(t, r, "t"); n != 0 {
		t.Fatalf("replica sees %d rows, want 0", n)
	}
	mustExec(t, w, "INSERT INTO t VALUES (1)")
	mustFlush(t, w)
	st := mustRefresh(t, r)
	if n := countRows(t, r, "t"); n != 1 || st.Rebases != 1 || st.Seq != 0 {
		t.Fatalf("after the writer's second full flush: %d rows, %+v", n, st)
	}
}

// A local= path holding a writer's unflushed writes is refused by a
// replica, naming local, rather than restored over.
func TestReplicaRefusesDirtyLocal(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	local := filepath.Join(t.TempDir(), "work.db")
	w, _ := openLog(t, fb, "app.db", "&local="+local)
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	mustExec(t, w, "INSERT INTO t VALUES (1)")
	fb.Inject(faulty.Upload, faulty.Every, faulty.Fail(nil))
	if err := w.Close(); err == nil {
		t.Fatal("the writer's final flush succeeded despite the fault")
	}
	fb.Clear()
	r := openReplica(t, fb, "app.db", "&local="+local)
	err := r.Ping()
	var de *driver.DSNError
	if !errors.As(err, &de) || de.Param != "local" {
		t.Fatalf("replica on a writer's unflushed working copy: %v; want an error naming local", err)
	}
}

// A read transaction that outlasts the apply's wait keeps its state: the
// refresh gives up (the replica stays where it was, and says why), new
// queries meanwhile still run, and the next refresh after the
// transaction applies the delta.
func TestReplicaLongReadTransaction(t *testing.T) {
	b := bucket.NewMemory()
	w, _ := openLog(t, b, "app.db", "")
	defer w.Close()
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	r := openReplica(t, b, "app.db", "")
	countRows(t, r, "t")
	mustExec(t, w, "INSERT INTO t VALUES (1)")
	mustFlush(t, w)
	tx, err := r.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("tx: %d rows, %v", n, err)
	}
	// The transaction does not end while Refresh runs: it must give up.
	// Queries that start meanwhile wait for it (their busy timeout is
	// longer than its wait), and none fails.
	stop, failed := make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(failed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			if err := r.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
				failed <- err
				return
			}
		}
	}()
	err = driver.Refresh(ctx, r)
	close(stop)
	if qerr := <-failed; qerr != nil {
		t.Fatalf("a query during the refresh: %v", qerr)
	}
	if err == nil || !strings.Contains(err.Error(), "read transaction") {
		t.Fatalf("refresh during a long read transaction: %v; want it to give up", err)
	}
	if n := countRows(t, r, "t"); n != 0 {
		t.Fatalf("a new query sees %d rows, want 0", n)
	}
	if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("tx after the failed refresh: %d rows, %v", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	st := mustRefresh(t, r)
	if n := countRows(t, r, "t"); n != 1 || st.RefreshFailures != 1 || st.Seq != 1 {
		t.Fatalf("after the transaction: %d rows, %+v", n, st)
	}
}

// A key replaced by another database whose log is shorter than the
// replica's sequence is noticed by the HEAD (its base is not the one the
// replica's deltas follow) and restored, not taken for a compaction.
func TestReplicaKeyReplaced(t *testing.T) {
	b := bucket.NewMemory()
	w, _ := openLog(t, b, "app.db", "")
	mustExec(t, w, "CREATE TABLE t(x)")
	mustFlush(t, w)
	r := openReplica(t, b, "app.db", "&refresh_interval=0")
	countRows(t, r, "t")
	for i := range 3 {
		mustExec(t, w, "INSERT INTO t VALUES (?)", i)
		mustFlush(t, w)
	}
	if st := mustRefresh(t, r); st.Seq != 3 {
		t.Fatalf("replica at %d, want 3", st.Seq)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	objs, err := bucket.ListAll(ctx, b, "app.db")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := b.Delete(ctx, o.Key); err != nil {
			t.Fatal(err)
		}
	}
	w2, _ := openLog(t, b, "app.db", "")
	defer w2.Close()
	mustExec(t, w2, "CREATE TABLE u(y)")
	mustFlush(t, w2)
	mustExec(t, w2, "INSERT INTO u VALUES (1)")
	mustFlush(t, w2)
	st := mustRefresh(t, r)
	if st.Rebases != 1 || st.Seq != 1 || countRows(t, r, "u") != 1 {
		t.Fatalf("after the key was replaced: %+v", st)
	}
}
