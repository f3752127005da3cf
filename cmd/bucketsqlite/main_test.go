package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// s3env starts versitygw with a bucket, puts its credentials in the
// standard AWS environment variables (as a user's shell would), and
// returns a function making the DSN of a key, and the bucket.
func s3env(t *testing.T) (func(key, params string) string, bucket.Bucket) {
	t.Helper()
	srv := s3test.Start(t)
	name := srv.NewBucket(t, "")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	b, err := bucket.NewS3(context.Background(), bucket.S3Config{Bucket: name, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return func(key, params string) string {
		dsn := fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&path_style=true", name, key, srv.Endpoint, srv.Region)
		if params != "" {
			dsn += "&" + params
		}
		return dsn
	}, b
}

// cli runs the command line in-process and returns its exit code, stdout
// and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustCLI runs the command line and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, args...)
	if code != exitOK {
		t.Fatalf("bucketsqlite %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// rows returns the rows of table t in the SQLite file at path, as one
// string.
func rows(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dump(t, db)
}

func dump(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s string
	if err := db.QueryRow("SELECT coalesce(group_concat(x || ':' || v, ','), '') FROM (SELECT * FROM t ORDER BY x)").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// openWriter opens the driver on dsn, flushing only when told.
func openWriter(t *testing.T, dsn string) (*sql.DB, *driver.Connector) {
	t.Helper()
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c
}

func exec1(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func flush(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := driver.Flush(context.Background(), db); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// A writer (sync=log, retention=1h) commits and flushes, and the test
// records each state it acknowledged and when; compact, run now and then
// while the writer goes on, archives the base it replaces. Then every
// `restore --at T` equals the state acknowledged at T, every `restore
// --seq N` the state of sequence N, `verify --at` passes, and ls --json
// shows the bases, archives and deltas with their writer.
func TestRestoreAtRecordedHistory(t *testing.T) {
	dsnOf, _ := s3env(t)
	dsn := dsnOf("app.db", "sync=log&retention=1h")
	db, c := openWriter(t, dsn+"&flush_interval=0")
	exec1(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	type state struct {
		at   time.Time
		seq  uint64
		rows string
	}
	var acked []state
	for round := range 12 {
		exec1(t, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("round ", round))
		if round%4 == 1 {
			exec1(t, db, "UPDATE t SET v = v || '!' WHERE x % 2 = 0")
		}
		flush(t, db)
		acked = append(acked, state{time.Now(), c.Stats().Seq, dump(t, db)})
		if round%4 == 3 {
			out := mustCLI(t, "compact", "-q", dsn)
			if !strings.Contains(out, "compacted") || !strings.Contains(out, "archived at") {
				t.Fatalf("compact said:\n%s", out)
			}
		}
	}
	dir := t.TempDir()
	for i, s := range acked {
		file := filepath.Join(dir, fmt.Sprintf("at%d.db", i))
		mustCLI(t, "restore", dsn, file, "--at", s.at.Format(time.RFC3339Nano))
		if got := rows(t, file); got != s.rows {
			t.Fatalf("restore --at state %d: %q, want %q", i, got, s.rows)
		}
		if s.seq > 0 {
			file := filepath.Join(dir, fmt.Sprintf("seq%d.db", i))
			mustCLI(t, "restore", "--seq", fmt.Sprint(s.seq), dsn, file)
			if got := rows(t, file); got != s.rows {
				t.Fatalf("restore --seq %d: %q, want %q", s.seq, got, s.rows)
			}
		}
		mustCLI(t, "verify", dsn, "--at", s.at.Format(time.RFC3339Nano))
	}
	latest := filepath.Join(dir, "latest.db")
	mustCLI(t, "restore", dsn, latest)
	if got := rows(t, latest); got != acked[len(acked)-1].rows {
		t.Fatalf("restore of the latest state: %q", got)
	}
	// Before the first flush there is nothing to restore.
	code, _, errOut := cli(t, "restore", dsn, filepath.Join(dir, "before.db"), "--at", acked[0].at.Add(-time.Hour).Format(time.RFC3339))
	if code != exitFailure || !strings.Contains(errOut, "older than the oldest base kept") {
		t.Fatalf("restore before the first flush: exit %d, %s", code, errOut)
	}

	var h snapshot.History
	if err := json.Unmarshal([]byte(mustCLI(t, "ls", "--json", dsn)), &h); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	writer := fmt.Sprintf("%s/%d", host, os.Getpid())
	if h.Base == nil || !h.Base.Log || h.Base.Seq == 0 || !h.Base.TimeRecorded || h.Base.Writer != writer || len(h.Archives) != 3 || h.Prev == nil {
		t.Fatalf("ls --json: base %+v, prev %+v, %d archives; want a log base, KEY.prev and three archives", h.Base, h.Prev, len(h.Archives))
	}
	if len(h.Deltas) == 0 || h.Deltas[len(h.Deltas)-1].Seq != acked[len(acked)-1].seq {
		t.Fatalf("ls --json: deltas %+v", h.Deltas)
	}
	for _, d := range h.Deltas {
		if d.Writer != writer || d.Time.IsZero() || d.Kind != snapshot.KindDelta {
			t.Fatalf("ls --json: delta %+v, want writer %s and a time", d, writer)
		}
	}
	table := mustCLI(t, "ls", dsn)
	for _, want := range []string{"KIND", "base", "prev", "archive", "delta", writer, snapshot.ArchiveKey("app.db", 0)} {
		if !strings.Contains(table, want) {
			t.Fatalf("ls table lacks %q:\n%s", want, table)
		}
	}

	last := acked[len(acked)-1].seq
	code, _, errOut = cli(t, "verify", "--seq", fmt.Sprint(last+5), dsn)
	if code != exitFailure || !strings.Contains(errOut, "beyond the log") {
		t.Fatalf("verify --seq beyond the log: exit %d, %s", code, errOut)
	}
	out := mustCLI(t, "prune", "--dry-run", "--retention", "0", dsn)
	if !strings.Contains(out, "would delete "+snapshot.ArchiveKey("app.db", 0)) {
		t.Fatalf("prune --dry-run said:\n%s", out)
	}
	var again snapshot.History
	if err := json.Unmarshal([]byte(mustCLI(t, "ls", "--json", dsn)), &again); err != nil || len(again.Archives) != len(h.Archives) {
		t.Fatalf("prune --dry-run deleted: %d archives left of %d (%v)", len(again.Archives), len(h.Archives), err)
	}

	// Pruning with no retention keeps what a restore of the latest state
	// needs, and that still restores.
	out = mustCLI(t, "prune", "--retention", "0", dsn)
	if !strings.Contains(out, "deleted "+snapshot.ArchiveKey("app.db", 0)) {
		t.Fatalf("prune said:\n%s", out)
	}
	mustCLI(t, "restore", "--force", dsn, latest)
	if got := rows(t, latest); got != acked[len(acked)-1].rows {
		t.Fatalf("restore after prune: %q", got)
	}
	code, _, errOut = cli(t, "restore", "--force", dsn, latest, "--at", acked[0].at.Format(time.RFC3339Nano))
	if code != exitFailure || !strings.Contains(errOut, "state not kept") {
		t.Fatalf("restore of a pruned state: exit %d, %s", code, errOut)
	}
}

// The writer's own compactions (here with the default thresholds,
// reached by incompressible rows) archive the bases they replace under
// retention=1h, on versitygw: every state it acknowledged restores with
// restore --at, from whichever base, archived or current, came before.
func TestRestoreAtWriterCompactions(t *testing.T) {
	dsnOf, _ := s3env(t)
	dsn := dsnOf("app.db", "sync=log&retention=1h")
	db, c := openWriter(t, dsn+"&flush_interval=0")
	exec1(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	exec1(t, db, "CREATE TABLE pad(b BLOB)")
	type state struct {
		at   time.Time
		rows string
	}
	var acked []state
	for round := range 14 {
		exec1(t, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("round ", round))
		exec1(t, db, "INSERT INTO pad VALUES (randomblob(450000))")
		flush(t, db)
		acked = append(acked, state{time.Now(), dump(t, db)})
	}
	if st := c.Stats(); st.Compactions < 2 {
		t.Fatalf("stats %+v: want the writer to have compacted at least twice", st)
	}
	var h snapshot.History
	if err := json.Unmarshal([]byte(mustCLI(t, "ls", "--json", dsn)), &h); err != nil {
		t.Fatal(err)
	}
	if int64(len(h.Archives)) != c.Stats().Compactions {
		t.Fatalf("%d archived bases after %d compactions", len(h.Archives), c.Stats().Compactions)
	}
	dir := t.TempDir()
	for i, s := range acked {
		file := filepath.Join(dir, fmt.Sprintf("at%d.db", i))
		mustCLI(t, "restore", "-q", "--check", "quick", dsn, file, "--at", s.at.Format(time.RFC3339Nano))
		if got := rows(t, file); got != s.rows {
			t.Fatalf("restore --at state %d: %q, want %q", i, got, s.rows)
		}
	}
}

// verify finds a damaged delta, names it and exits 1; restore refuses
// it too and writes nothing.
func TestVerifyDamagedDelta(t *testing.T) {
	dsnOf, b := s3env(t)
	dsn := dsnOf("app.db", "sync=log")
	db, _ := openWriter(t, dsn+"&flush_interval=0")
	exec1(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	flush(t, db)
	for i := range 3 {
		exec1(t, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint(i))
		flush(t, db)
	}
	if out := mustCLI(t, "verify", dsn); !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "sequence 3") {
		t.Fatalf("verify said %q", out)
	}
	// Damage delta 2: flip a byte, keeping the object's own SHA-256
	// metadata (the damage a disk, not the transfer, would do).
	ctx := context.Background()
	k := snapshot.LogKey("app.db", 2)
	var w memWriterAt
	a, err := b.Download(ctx, k, &w)
	if err != nil {
		t.Fatal(err)
	}
	w.buf[len(w.buf)/2] ^= 0xff
	if _, err := b.Upload(ctx, k, bytes.NewReader(w.buf), int64(len(w.buf)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = a
	code, out, errOut := cli(t, "verify", dsn)
	if code != exitFailure || !strings.Contains(errOut, k) || out != "" {
		t.Fatalf("verify of a damaged delta: exit %d, stdout %q, stderr %q; want exit 1 naming %s", code, out, errOut, k)
	}
	file := filepath.Join(t.TempDir(), "r.db")
	if code, _, errOut := cli(t, "restore", dsn, file); code != exitFailure || !strings.Contains(errOut, k) {
		t.Fatalf("restore of a damaged delta: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("restore left %s behind: %v", file, err)
	}
}

type memWriterAt struct{ buf []byte }

func (w *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	copy(w.buf[off:], p)
	return len(p), nil
}

// push refuses to replace a database without --force; with it, the old
// one is kept at KEY.prev, readers get the pushed file, and a writer
// still running on the old database is fenced: its next flush conflicts
// and changes nothing readers see.
func TestPush(t *testing.T) {
	dsnOf, b := s3env(t)
	dsn := dsnOf("app.db", "sync=log")
	db, _ := openWriter(t, dsn+"&flush_interval=0")
	exec1(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	exec1(t, db, "INSERT INTO t(v) VALUES ('old')")
	flush(t, db)
	exec1(t, db, "INSERT INTO t(v) VALUES ('old 2')")
	flush(t, db)

	dir := t.TempDir()
	local := filepath.Join(dir, "local.db")
	ldb, err := sql.Open("sqlite3", local+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	exec1(t, ldb, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	exec1(t, ldb, "INSERT INTO t(v) VALUES ('pushed')")
	want := dump(t, ldb)

	code, _, errOut := cli(t, "push", local, dsn)
	if code != exitFailure || !strings.Contains(errOut, "--force") {
		t.Fatalf("push over a database: exit %d, %s", code, errOut)
	}
	out := mustCLI(t, "push", "--force", local, dsn)
	if !strings.Contains(out, "kept at app.db.prev") || !strings.Contains(out, "fenced") {
		t.Fatalf("push --force said:\n%s", out)
	}
	restored := filepath.Join(dir, "restored.db")
	mustCLI(t, "restore", dsn, restored)
	if got := rows(t, restored); got != want {
		t.Fatalf("after push: %q, want %q", got, want)
	}
	prev := filepath.Join(dir, "prev.db")
	if _, err := snapshot.RestoreFile(context.Background(), b, snapshot.PrevKey("app.db"), prev, snapshot.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := rows(t, prev); got != "1:old" {
		t.Fatalf("KEY.prev holds %q, want the replaced base", got)
	}

	// The old writer's next delta would follow the old log: it is fenced.
	exec1(t, db, "INSERT INTO t(v) VALUES ('stale')")
	if _, err := driver.Flush(context.Background(), db); err == nil {
		t.Fatal("a writer on the replaced database flushed without a conflict")
	}
	mustCLI(t, "restore", "--force", dsn, restored)
	if got := rows(t, restored); got != want {
		t.Fatalf("after the stale writer's flush: %q, want %q", got, want)
	}
	mustCLI(t, "verify", dsn)

	// A writer on the pushed database goes on from it.
	db.Close() // fails its final flush, fenced still
	db2, _ := openWriter(t, dsn+"&flush_interval=0")
	exec1(t, db2, "INSERT INTO t(v) VALUES ('next')")
	flush(t, db2)
	exec1(t, db2, "INSERT INTO t(v) VALUES ('next 2')")
	flush(t, db2)
	mustCLI(t, "restore", "--force", dsn, restored)
	if got := rows(t, restored); got != "1:pushed,2:next,3:next 2" {
		t.Fatalf("after writing on the pushed database: %q", got)
	}

	// Even a delta of the old log written after the pushed base's (had
	// the fence failed) is never applied to it: its image checksum does
	// not follow, and the restore names it.
	ctx := context.Background()
	var w memWriterAt
	if _, err := b.Download(ctx, snapshot.LogKey("app.db", 1), &w); err != nil {
		t.Fatal(err)
	}
	old, err := snapshot.DecodeDelta(bytes.NewReader(w.buf))
	if err != nil {
		t.Fatal(err)
	}
	h, err := snapshot.ReadHistory(ctx, b, "app.db", snapshot.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old.Seq = h.LastSeq() + 1
	var enc bytes.Buffer
	if _, err := old.Encode(&enc); err != nil {
		t.Fatal(err)
	}
	stale := snapshot.LogKey("app.db", old.Seq)
	if _, err := b.Upload(ctx, stale, bytes.NewReader(enc.Bytes()), int64(enc.Len()), bucket.WriteOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "restore", "--force", dsn, restored)
	if code != exitFailure || !strings.Contains(errOut, stale) || !strings.Contains(errOut, "image checksum") {
		t.Fatalf("restore with a stale delta after the pushed base: exit %d, %s", code, errOut)
	}
}

// The command line's refusals: mem:// DSNs, bad usage, an existing FILE.
func TestRefusals(t *testing.T) {
	code, _, errOut := cli(t, "ls", "mem://x/app.db")
	if code != exitUsage || !strings.Contains(errOut, "mem://x/app.db") || !strings.Contains(errOut, "one process") {
		t.Fatalf("mem://: exit %d, %s", code, errOut)
	}
	if code, _, _ := cli(t, "frobnicate"); code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code, _, _ := cli(t); code != exitUsage {
		t.Fatalf("no command: exit %d", code)
	}
	if code, _, _ := cli(t, "restore", "file:///tmp/x.db"); code != exitUsage {
		t.Fatalf("missing FILE: exit %d", code)
	}
	if code, _, errOut := cli(t, "ls", "s3://b/k?bogus=1"); code != exitUsage || !strings.Contains(errOut, "bogus") {
		t.Fatalf("bad DSN: exit %d, %s", code, errOut)
	}
	if code, _, _ := cli(t, "restore", "--at", "yesterday", "file:///tmp/x.db", "f"); code != exitUsage {
		t.Fatalf("bad --at: exit %d", code)
	}
	if code, out, _ := cli(t, "--help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Fatalf("--help: exit %d, %s", code, out)
	}

	dir := t.TempDir()
	dsn := "file://" + dir + "/app.db?sync=log"
	local := filepath.Join(dir, "local.db")
	ldb, err := sql.Open("sqlite3", local)
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, ldb, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	ldb.Close()
	mustCLI(t, "push", local, dsn)
	existing := filepath.Join(dir, "existing.db")
	os.WriteFile(existing, []byte("keep me"), 0o600)
	code, _, errOut = cli(t, "restore", dsn, existing)
	if b, _ := os.ReadFile(existing); code != exitFailure || string(b) != "keep me" || !strings.Contains(errOut, "--force") {
		t.Fatalf("restore over an existing file: exit %d, %s", code, errOut)
	}
	mustCLI(t, "restore", "--force", dsn, existing)
}

// go build makes a working binary: run as a user would, against
// versitygw, over pipes (no progress bar), with the documented exit codes.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "bucketsqlite")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dsnOf, _ := s3env(t)
	dsn := dsnOf("bin.db", "sync=log")
	dir := t.TempDir()
	local := filepath.Join(dir, "local.db")
	ldb, err := sql.Open("sqlite3", local)
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, ldb, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	exec1(t, ldb, "INSERT INTO t(v) VALUES (zeroblob(6000000))") // over the progress bar's threshold
	ldb.Close()
	runBin := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := runBin("push", local, dsn); code != 0 || errOut != "" {
		t.Fatalf("push: exit %d, stderr %q (no progress bar on a pipe)", code, errOut)
	}
	if code, out, errOut := runBin("restore", dsn, filepath.Join(dir, "r.db")); code != 0 || errOut != "" || !strings.Contains(out, "restored") {
		t.Fatalf("restore: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, _ := runBin("restore", dsn, filepath.Join(dir, "r.db")); code != 1 {
		t.Fatalf("restore over an existing file: exit %d, want 1", code)
	}
	if code, _, _ := runBin("ls", "mem://x/y.db"); code != 2 {
		t.Fatalf("mem://: exit %d, want 2", code)
	}
	code, out, _ := runBin("ls", "--json", dsn)
	var h snapshot.History
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || h.Base == nil || h.Base.Size < 6000000 {
		t.Fatalf("ls --json: exit %d, %v, %s", code, err, out)
	}
}
