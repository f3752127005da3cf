//go:build cgo

package driver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/netproxy"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// hookBucket calls around before every call to the bucket it wraps, and
// the function around returns (if not nil) once the call has returned:
// a test arms a network fault for exactly one request of the driver's.
type hookBucket struct {
	bucket.Bucket
	around func(op faulty.Op, key string) (after func(err error))
}

func (h *hookBucket) call(op faulty.Op, key string, f func() error) {
	var after func(error)
	if h.around != nil {
		after = h.around(op, key)
	}
	err := f()
	if after != nil {
		after(err)
	}
}

func (h *hookBucket) Stat(ctx context.Context, key string) (a bucket.Attrs, err error) {
	h.call(faulty.Stat, key, func() error { a, err = h.Bucket.Stat(ctx, key); return err })
	return a, err
}

func (h *hookBucket) Download(ctx context.Context, key string, dst io.WriterAt) (a bucket.Attrs, err error) {
	h.call(faulty.Download, key, func() error { a, err = h.Bucket.Download(ctx, key, dst); return err })
	return a, err
}

func (h *hookBucket) Upload(ctx context.Context, key string, src io.ReaderAt, size int64, opts bucket.WriteOptions) (a bucket.Attrs, err error) {
	h.call(faulty.Upload, key, func() error { a, err = h.Bucket.Upload(ctx, key, src, size, opts); return err })
	return a, err
}

func (h *hookBucket) Copy(ctx context.Context, src, dst string, opts bucket.CopyOptions) (a bucket.Attrs, err error) {
	h.call(faulty.Copy, dst, func() error { a, err = h.Bucket.Copy(ctx, src, dst, opts); return err })
	return a, err
}

func (h *hookBucket) Delete(ctx context.Context, key string) (err error) {
	h.call(faulty.Delete, key, func() error { err = h.Bucket.Delete(ctx, key); return err })
	return err
}

func (h *hookBucket) List(ctx context.Context, opts bucket.ListOptions) (p bucket.ListPage, err error) {
	h.call(faulty.List, opts.Prefix, func() error { p, err = h.Bucket.List(ctx, opts); return err })
	return p, err
}

// logRecorder collects what the driver logs, as text.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func (r *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openLogOpts is openLog with driver options.
func openLogOpts(t *testing.T, key, params string, opts ...driver.Option) (*sql.DB, *driver.Connector) {
	t.Helper()
	cfg := mustConfig(t, "mem://unused/"+key+"?flush_interval=0&sync=log"+params)
	c, err := driver.NewConnector(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c
}

// logKeys returns the sequence numbers of key's deltas in b, in order.
func logKeys(t *testing.T, b bucket.Bucket, key string) []uint64 {
	t.Helper()
	objs, err := bucket.ListAll(context.Background(), b, snapshot.LogPrefix(key))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, o := range objs {
		n, err := strconv.ParseUint(strings.TrimPrefix(o.Key, snapshot.LogPrefix(key)), 10, 64)
		if err != nil {
			t.Fatalf("a stray object in the log: %s", o.Key)
		}
		seqs = append(seqs, n)
	}
	return seqs
}

// checkLog checks what the bucket holds for key after a writer at
// sequence seq: the base records a sequence no later than seq; the deltas
// after it are exactly base+1 .. seq, none missing, none beyond; every
// delta's bytes are those its sha256 metadata names (written once, by
// its writer, whole).
func checkLog(t *testing.T, b bucket.Bucket, key string, seq uint64) {
	t.Helper()
	a, err := b.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	baseSeq, err := strconv.ParseUint(a.Metadata[snapshot.MetaSeq], 10, 64)
	if err != nil || baseSeq > seq {
		t.Fatalf("the base records seq %q (%v); the writer is at %d", a.Metadata[snapshot.MetaSeq], err, seq)
	}
	seqs := logKeys(t, b, key)
	have := map[uint64]bool{}
	for _, n := range seqs {
		if n > seq {
			t.Fatalf("delta %d in the bucket, beyond the writer's sequence %d: %v", n, seq, seqs)
		}
		have[n] = true
		data := readObject(t, b, snapshot.LogKey(key, n))
		sum := sha256.Sum256(data)
		if st, _ := b.Stat(context.Background(), snapshot.LogKey(key, n)); st.Metadata[snapshot.MetaSHA256] != hex.EncodeToString(sum[:]) {
			t.Fatalf("delta %d holds bytes other than its sha256 metadata names", n)
		}
	}
	for n := baseSeq + 1; n <= seq; n++ {
		if !have[n] {
			t.Fatalf("delta %d missing after a base at %d (writer at %d): %v", n, baseSeq, seq, seqs)
		}
	}
}

// A cut is where TestLogNetworkCut breaks the connection: the count-th
// call of op on a key for which key reports true, cut in direction dir
// after after bytes, on every attempt the SDK makes of that call.
type logCut struct {
	name  string
	op    faulty.Op
	key   func(string) bool
	count int
	dir   netproxy.Direction
	after int64
	// landed reports that the cut request reaches the server.
	landed bool
	// params are more DSN parameters (keep_previous=true unless set).
	params string
	// fails reports that the flush of the cut must return an error: the
	// delta is not confirmed. A cut in a compaction does not fail the
	// flush: its delta is in the log.
	fails bool
}

func isDeltaKey(k string) bool { return strings.HasPrefix(k, snapshot.LogPrefix("app.db")) }
func isBaseKey(k string) bool  { return k == "app.db" }

// TestLogNetworkCut cuts the connection to a real S3 server (versitygw,
// through internal/netproxy) at one request of a sync=log flush: the
// delta's PUT mid-body, its response (the delta landed), the confirming
// HEAD, the compaction's base upload (mid-body and its response), the
// copy to KEY.prev, the LIST and a DELETE of the deletion after a
// compaction. After the cut the flush fails (or succeeds, when what it
// owes the log landed), the bucket holds the last acknowledged state or
// the new one, the writer's later flushes succeed and compact again, a
// fresh restore equals the writer's database after every flush, the log
// has no gap and no delta beyond the writer's sequence, and nothing is
// reported as a conflict: the writer never trips over its own requests.
func TestLogNetworkCut(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 3, 16<<20)() // compact at every 4th delta
	cuts := []logCut{
		{name: "delta body", op: faulty.Upload, key: isDeltaKey, count: 2, dir: netproxy.Up, after: 8 << 10, fails: true},
		{name: "delta response", op: faulty.Upload, key: isDeltaKey, count: 2, dir: netproxy.Down, landed: true, fails: true},
		{name: "confirming head", op: faulty.Stat, key: isDeltaKey, count: 2, dir: netproxy.Down, landed: true, fails: true},
		{name: "compaction base body", op: faulty.Upload, key: isBaseKey, count: 2, dir: netproxy.Up, after: 64 << 10},
		{name: "compaction base response", op: faulty.Upload, key: isBaseKey, count: 2, dir: netproxy.Down, landed: true},
		{name: "compaction base response without keep_previous", op: faulty.Upload, key: isBaseKey, count: 2, dir: netproxy.Down, landed: true, params: "&keep_previous=false"},
		{name: "compaction keep previous", op: faulty.Copy, key: func(k string) bool { return k == snapshot.PrevKey("app.db") }, count: 1, dir: netproxy.Down, landed: true},
		{name: "deletion list", op: faulty.List, key: isDeltaKey, count: 2, dir: netproxy.Down, landed: true},
		{name: "deletion delete request", op: faulty.Delete, key: isDeltaKey, count: 2, dir: netproxy.Up},
		{name: "deletion delete response", op: faulty.Delete, key: isDeltaKey, count: 2, dir: netproxy.Down, landed: true},
	}
	for _, cut := range cuts {
		t.Run(cut.name, func(t *testing.T) { logNetworkCut(t, cut) })
	}
}

func logNetworkCut(t *testing.T, cut logCut) {
	p := newProxied(t)
	sb, err := bucket.NewS3(ctx, bucket.S3Config{Bucket: p.name, Client: p.srv.ClientAt(p.proxy.Endpoint())})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		seen   int
		fired  bool
		cutErr error
	)
	written := map[string]int{} // delta uploads that landed, by key
	hb := &hookBucket{Bucket: sb, around: func(op faulty.Op, key string) func(error) {
		mu.Lock()
		defer mu.Unlock()
		count := func(err error) {
			if op == faulty.Upload && isDeltaKey(key) && err == nil {
				mu.Lock()
				written[key]++
				mu.Unlock()
			}
		}
		if op != cut.op || !cut.key(key) || fired {
			return count
		}
		if seen++; seen != cut.count {
			return count
		}
		fired = true
		p.proxy.Cut(cut.dir, cut.after, netproxy.Forever)
		return func(err error) {
			p.proxy.Heal()
			if cut.landed {
				count(nil) // the server stored it, whatever the client heard
			} else {
				count(err)
			}
			mu.Lock()
			cutErr = err
			mu.Unlock()
		}
	}}
	var logs logRecorder
	params := cut.params
	if params == "" {
		params = "&keep_previous=true"
	}
	db, c := openLogOpts(t, "app.db", params+"&flush_timeout="+netBound.String(),
		driver.WithBucket(hb), driver.WithLogger(logs.logger()))
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, b BLOB)")
	addBlobs(t, db, 200)
	mustFlush(t, db)
	acked := digest(t, db)
	faultRound, compactionsAtFault := -1, int64(0)
	const rounds = 16
	for round := 1; round <= rounds; round++ {
		addBlobs(t, db, 30) // ~30 KiB of random pages: a delta a cut can land in
		want := digest(t, db)
		_, err := driver.Flush(ctx, db)
		mu.Lock()
		justFired := fired && faultRound < 0
		mu.Unlock()
		if !justFired {
			if err != nil {
				t.Fatalf("round %d: flush: %v", round, err)
			}
		} else {
			faultRound = round
			compactionsAtFault = c.Stats().Compactions
			mu.Lock()
			t.Logf("round %d: the cut %s call returned %v; the flush returned %v", round, cut.op, cutErr, err)
			if cutErr == nil {
				t.Fatalf("round %d: the cut call succeeded: the cut missed its request", round)
			}
			mu.Unlock()
			if errors.Is(err, snapshot.ErrConflict) {
				t.Fatalf("round %d: the cut made the writer see a conflict with itself: %v", round, err)
			}
			if cut.fails && err == nil {
				t.Fatalf("round %d: the flush succeeded although its delta was never confirmed", round)
			}
			if !cut.fails && err != nil {
				t.Fatalf("round %d: the flush failed although its delta was in the log: %v", round, err)
			}
		}
		got, gerr := fileDigest(t, p.direct, "app.db")
		switch {
		case gerr != nil:
			t.Fatalf("round %d: restore: %v", round, gerr)
		case err == nil && got != want:
			t.Fatalf("round %d: the restored database differs from the writer's acknowledged one", round)
		case err != nil && got != acked && got != want:
			t.Fatalf("round %d: after a failed flush the bucket holds neither the acknowledged state nor the new one", round)
		case err != nil && !cut.landed && got != acked:
			t.Fatalf("round %d: a request that never reached the server changed the bucket", round)
		}
		seq := c.Stats().Seq
		if err == nil {
			acked = want
		} else if cut.landed {
			seq++ // the unconfirmed delta may be there
		}
		checkLog(t, p.direct, "app.db", seq)
	}
	if faultRound < 0 {
		t.Fatalf("the cut never fired in %d rounds (%s #%d): the test proved nothing", rounds, cut.op, cut.count)
	}
	if p.proxy.Cuts() == 0 {
		t.Fatal("the proxy cut no connection")
	}
	st := c.Stats()
	t.Logf("cut in round %d; %d compactions (%d at the cut), seq %d, log %v", faultRound, st.Compactions, compactionsAtFault, st.Seq, logKeys(t, p.direct, "app.db"))
	t.Logf("warnings:\n%s", warnings(logs.String()))
	if st.Conflicted || st.LastError != nil {
		t.Fatalf("stats after the rounds: conflicted %v, last error %v", st.Conflicted, st.LastError)
	}
	if st.Compactions < compactionsAtFault+2 {
		t.Fatalf("%d compactions after the cut (of %d), want at least 2: compaction stopped working", st.Compactions-compactionsAtFault, st.Compactions)
	}
	if l := strings.ToLower(logs.String()); strings.Contains(l, "conflict") {
		t.Fatalf("the writer reported a conflict with itself:\n%s", logs.String())
	}
	mu.Lock()
	for k, n := range written {
		if n > 1 {
			t.Errorf("%s was written %d times", k, n)
		}
	}
	if len(written) != int(st.Seq) {
		t.Errorf("%d deltas written for %d sequences", len(written), st.Seq)
	}
	mu.Unlock()
	// The deletion after a compaction catches up with what a cut one
	// left: at most the deltas of the current base and the one before.
	if seqs := logKeys(t, p.direct, "app.db"); len(seqs) > 2*(3+1) || !contiguous(seqs) {
		t.Fatalf("%d deltas in the bucket after %d compactions: compacted deltas are left behind: %v", len(seqs), st.Compactions, seqs)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, err := fileDigest(t, p.direct, "app.db"); err != nil || got != acked {
		t.Fatalf("after Close the restored database differs from the writer's (%v)", err)
	}
	checkLog(t, p.direct, "app.db", st.Seq)
}

// warnings returns the lines of logs at level WARN or ERROR.
func warnings(logs string) string {
	var b strings.Builder
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// contiguous reports whether seqs (ascending) are consecutive numbers.
func contiguous(seqs []uint64) bool {
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			return false
		}
	}
	return true
}

// A compaction whose base landed with its response lost, then writes: a
// restart must keep the dirty working copy and flush it, since the bucket
// moved on only by this writer's own base (and deltas after it, one of
// them perhaps unconfirmed), not report ErrDiverged; the bucket must then
// restore to the working copy, its log going on after every delta there.
func TestLogLocalRestartAfterUnconfirmedCompaction(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 3, 16<<20)()
	for _, tc := range []struct {
		name       string
		deltas     int  // flushes after the compaction, its base never confirmed
		lastLanded bool // the failed final flush's delta landed
	}{
		{"at once", 0, false},
		{"after deltas", 2, false},
		{"after deltas, last one unconfirmed", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := bucket.NewMemory()
			local := filepath.Join(t.TempDir(), "work.db")
			fb := faulty.New(inner)
			db := openLogLocal(t, fb, local)
			mustExec(t, db, "CREATE TABLE t(x)")
			mustFlush(t, db)
			var rule *faulty.Rule
			for i := range 4 {
				mustExec(t, db, "INSERT INTO t VALUES (?)", i)
				if i == 3 {
					rule = fb.Inject(faulty.Upload, 2, faulty.FailAfter(nil)) // the compaction's base, after its delta
				}
				mustFlush(t, db)
			}
			if rule.Fired() != 1 {
				t.Fatal("the compaction's base upload was not hit")
			}
			// Later compactions fail without landing: the landed base
			// stays unconfirmed while deltas follow it.
			fb.InjectFunc(faulty.Upload, func(_ int, key string) (faulty.Fault, bool) {
				return faulty.Fail(nil), key == "app.db"
			})
			for i := range tc.deltas {
				mustExec(t, db, "INSERT INTO t VALUES (?)", 10+i)
				mustFlush(t, db)
			}
			mustExec(t, db, "INSERT INTO t VALUES (99)")
			want := dumpT(t, db)
			fail := faulty.Fail(errors.New("injected outage"))
			if tc.lastLanded {
				fail = faulty.FailAfter(nil)
			}
			fb.Inject(faulty.Upload, faulty.Every, fail)
			if err := db.Close(); err == nil {
				t.Fatal("Close succeeded with every upload failing")
			}
			t.Logf("log before the restart: %v", logKeys(t, inner, "app.db"))
			db = openLogLocal(t, faulty.New(inner), local)
			defer db.Close()
			if err := db.Ping(); err != nil {
				t.Fatalf("restart after an unconfirmed compaction of its own: %v", err)
			}
			if got := dumpT(t, db); got != want {
				t.Fatal("the working copy lost rows")
			}
			mustExec(t, db, "INSERT INTO t VALUES (100)")
			mustFlush(t, db)
			mustExec(t, db, "INSERT INTO t VALUES (101)")
			want = dumpT(t, db)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if got, _ := restoredRows(t, inner, "app.db"); got != want {
				t.Fatal("the bucket lacks rows after Close")
			}
			t.Logf("log after: %v", logKeys(t, inner, "app.db"))
		})
	}
}
