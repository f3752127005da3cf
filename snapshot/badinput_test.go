package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// restoreBound ends a restore that hangs on bad input: the test fails if
// it is ever reached; it is not a timing assertion.
const restoreBound = 30 * time.Second

// dump is every table's schema and rows, in order: two databases with
// the same dump hold the same data.
func dump(t testing.TB, c *sqlite3.SQLiteConn) string {
	t.Helper()
	var b strings.Builder
	for _, s := range rows(t, c, "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name") {
		b.WriteString(s + "\n")
	}
	b.WriteString(strings.Join(rows(t, c, "SELECT id || ':' || quote(v) || ':' || quote(n) FROM t ORDER BY id"), "\n"))
	return b.String()
}

// mutate returns a damaged copy of good: bit flips, a truncation, a page
// zeroed or copied over another, or several of these.
func mutate(rng *rand.Rand, good []byte, pageSize int) ([]byte, string) {
	p := bytes.Clone(good)
	var what []string
	for range 1 + rng.IntN(3) {
		switch rng.IntN(6) {
		case 0, 1, 2:
			i := rng.IntN(len(p))
			bit := byte(1) << rng.IntN(8)
			p[i] ^= bit
			what = append(what, fmt.Sprintf("flip %d/%#x", i, bit))
		case 3:
			n := rng.IntN(len(p))
			p = p[:n]
			what = append(what, fmt.Sprintf("truncate %d", n))
		case 4:
			if pages := len(p) / pageSize; pages > 0 {
				pg := rng.IntN(pages)
				clear(p[pg*pageSize : (pg+1)*pageSize])
				what = append(what, fmt.Sprintf("zero page %d", pg+1))
			}
		case 5:
			if pages := len(p) / pageSize; pages > 1 {
				a, b := rng.IntN(pages), rng.IntN(pages)
				copy(p[a*pageSize:(a+1)*pageSize], p[b*pageSize:(b+1)*pageSize])
				what = append(what, fmt.Sprintf("copy page %d over %d", b+1, a+1))
			}
		}
		if len(p) == 0 {
			break
		}
	}
	return p, strings.Join(what, ", ")
}

// TestRestoreDamagedSnapshots restores thousands of randomly damaged
// copies of a real snapshot (seeded; BUCKETSQLITE_SEED replays one run).
//
// With the SHA-256 in the object's metadata, as Flush writes it, every
// damaged copy is ErrCorrupt. Without it (a Python-written snapshot),
// PRAGMA integrity_check and the header checks are all there is: a
// restore is ErrCorrupt or yields a database that passes integrity_check
// (a flipped bit inside a record's value is invisible to SQLite's
// structural checks; the test counts those). Either way no restore
// panics, hangs, changes its destination when it fails, or leaves a temp
// file behind.
func TestRestoreDamagedSnapshots(t *testing.T) {
	n := 1500
	if v, _ := strconv.ParseBool(os.Getenv("BUCKETSQLITE_LONG")); v {
		n = 20000
	}
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("BUCKETSQLITE_SEED"); v != "" {
		s, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d", s)
	rng := rand.New(rand.NewPCG(s, 3))

	// A small database with several kinds of pages: a table, an index,
	// overflow pages, a freelist.
	const pageSize = 1024
	src := newDB(t, "DELETE")
	run(t, src, "PRAGMA page_size = 1024")
	run(t, src, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
	run(t, src, "CREATE INDEX t_v ON t(v)")
	for i := range 60 {
		run(t, src, "INSERT INTO t(v, n) VALUES (?, ?)", fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%7*40)), int64(i*i))
	}
	run(t, src, "INSERT INTO t(v, n) VALUES (?, 0)", strings.Repeat("overflow", 400))
	run(t, src, "CREATE TABLE gone(x)")
	run(t, src, "INSERT INTO gone VALUES (randomblob(3000))")
	run(t, src, "DROP TABLE gone")
	f, err := snapshot.Take(ctx, src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(f.Path())
	f.Remove()
	want := dump(t, src)
	t.Logf("snapshot: %d bytes, %d pages", len(good), len(good)/pageSize)
	sum := sha256.Sum256(good)
	goodHash := hex.EncodeToString(sum[:])

	b := bucket.NewMemory()
	tmp := t.TempDir()
	dst := newDB(t, "WAL")
	run(t, dst, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
	run(t, dst, "INSERT INTO t(v) VALUES ('destination')")
	dstDump := dump(t, dst)
	targetDir := t.TempDir()
	target := filepath.Join(targetDir, "work.db")

	var corrupt, identical, silent, withMeta int
	for i := range n {
		bad, what := mutate(rng, good, pageSize)
		meta := map[string]string(nil)
		if i%4 == 0 {
			meta = map[string]string{snapshot.MetaSHA256: goodHash}
			withMeta++
		}
		upload(t, b, "k", bad, meta)
		rctx, cancel := context.WithTimeout(ctx, restoreBound)
		var info snapshot.Info
		if i%10 == 9 {
			os.WriteFile(target, []byte("keep me"), 0o600)
			info, err = snapshot.RestoreFile(rctx, b, "k", target, snapshot.RestoreOptions{})
		} else {
			info, err = snapshot.RestoreConn(rctx, dst, b, "k", snapshot.RestoreOptions{TempDir: tmp})
		}
		hung := rctx.Err() != nil
		cancel()
		if hung {
			t.Fatalf("case %d (%s): the restore hung", i, what)
		}
		same := bytes.Equal(bad, good)
		switch {
		case err != nil && !errors.Is(err, snapshot.ErrCorrupt):
			t.Fatalf("case %d (%s): %v; want ErrCorrupt", i, what, err)
		case err != nil:
			corrupt++
			if i%10 == 9 {
				if data, _ := os.ReadFile(target); string(data) != "keep me" {
					t.Fatalf("case %d (%s): a failed RestoreFile replaced its target", i, what)
				}
			} else if i%50 == 0 && dump(t, dst) != dstDump {
				t.Fatalf("case %d (%s): a failed restore changed its destination", i, what)
			}
		case !info.Found:
			t.Fatalf("case %d (%s): restore found nothing", i, what)
		case meta != nil && !same:
			t.Fatalf("case %d (%s): a damaged snapshot with its sha256 restored", i, what)
		default:
			var got string
			if i%10 == 9 {
				c := openDB(t, target, "DELETE")
				got = dump(t, c)
				if r := rows(t, c, "PRAGMA integrity_check"); len(r) != 1 || r[0] != "ok" {
					t.Fatalf("case %d (%s): restored file fails integrity_check: %v", i, what, r)
				}
				c.Close()
				os.Remove(target)
			} else {
				got = dump(t, dst)
				if r := rows(t, dst, "PRAGMA integrity_check"); len(r) != 1 || r[0] != "ok" {
					t.Fatalf("case %d (%s): restored database fails integrity_check: %v", i, what, r)
				}
				dstDump = got
			}
			if got == want {
				identical++
			} else {
				silent++
				if silent <= 3 {
					t.Logf("case %d (%s): no sha256, damage invisible to integrity_check: restored different data", i, what)
				}
			}
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Fatalf("case %d (%s): %d temp files left", i, what, len(ents))
		}
		if ents, _ := os.ReadDir(targetDir); len(ents) > 1 {
			t.Fatalf("case %d (%s): RestoreFile left temp files", i, what)
		}
	}
	t.Logf("%d damaged snapshots (%d with sha256): %d ErrCorrupt, %d restored identical, %d restored different data undetected (all without sha256)",
		n, withMeta, corrupt, identical, silent)
	if corrupt < n/2 {
		t.Fatalf("only %d of %d damaged snapshots were refused: the mutations are too mild to prove much", corrupt, n)
	}
}
