//go:build cgo

package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// restoreAt restores key as of opts into a scratch file and returns t's
// rows as one string.
func restoreAt(t *testing.T, b bucket.Bucket, key string, opts snapshot.RestoreOptions) (string, snapshot.Info, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "at.db")
	info, err := snapshot.RestoreFile(context.Background(), b, key, path, opts)
	if err != nil {
		return "", info, err
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dumpT(t, db), info, nil
}

// With retention=, the writer's compactions archive the bases they
// replace and keep their deltas, so that every state it acknowledged can
// be restored by time and by sequence; pruning later (here: as if the
// retention had passed) deletes the archives and deltas no restore within
// the retention needs, and the latest state still restores.
func TestRetentionPointInTime(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 4, 256<<10)()
	b := bucket.NewMemory()
	db, c := openLog(t, b, "app.db", "&retention=1h")
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY, v TEXT)")
	type point struct {
		at   time.Time
		seq  uint64
		rows string
	}
	var acked []point
	for round := range 30 {
		for i := range 20 {
			mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(round, i), 30))
		}
		mustFlush(t, db)
		acked = append(acked, point{time.Now(), c.Stats().Seq, dumpT(t, db)})
	}
	if st := c.Stats(); st.Compactions < 3 {
		t.Fatalf("stats %+v: want at least three compactions", st)
	}
	h, err := snapshot.ReadHistory(context.Background(), b, "app.db", snapshot.HistoryOptions{DeltaHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Archives) < 3 || h.Deltas[0].Seq != 1 {
		t.Fatalf("history: %d archives, first delta %d; want every compaction's base archived and every delta kept", len(h.Archives), h.Deltas[0].Seq)
	}
	for i, p := range acked {
		got, info, err := restoreAt(t, b, "app.db", snapshot.RestoreOptions{At: p.at})
		if err != nil {
			t.Fatalf("restore at point %d: %v", i, err)
		}
		if got != p.rows || info.Seq != p.seq {
			t.Fatalf("restore at point %d (%v): sequence %d from %s, want the state acknowledged then (sequence %d)", i, p.at, info.Seq, info.BaseKey, p.seq)
		}
		if p.seq == 0 {
			continue
		}
		if got, _, err := restoreAt(t, b, "app.db", snapshot.RestoreOptions{Seq: p.seq}); err != nil || got != p.rows {
			t.Fatalf("restore of sequence %d: %v, or not the state acknowledged then", p.seq, err)
		}
	}
	if _, _, err := restoreAt(t, b, "app.db", snapshot.RestoreOptions{At: acked[0].at.Add(-time.Hour)}); !errors.Is(err, snapshot.ErrNotKept) {
		t.Fatalf("restore before the first flush: %v, want ErrNotKept", err)
	}
	if _, _, err := restoreAt(t, b, "app.db", snapshot.RestoreOptions{Seq: acked[len(acked)-1].seq + 1}); !errors.Is(err, snapshot.ErrNotKept) {
		t.Fatalf("restore beyond the log: %v, want ErrNotKept", err)
	}

	// Two hours later, what restores within the hour need is one base
	// (the current one) and the deltas of the previous.
	res, err := snapshot.Prune(context.Background(), b, "app.db", snapshot.PruneOptions{Retention: time.Hour, Now: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	after, err := snapshot.ReadHistory(context.Background(), b, "app.db", snapshot.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Keep == nil || res.Keep.Kind != snapshot.KindBase || len(after.Archives) != 0 || len(after.Deltas) >= len(h.Deltas) {
		t.Fatalf("after pruning: keep %+v, %d archives, %d deltas (from %d)", res.Keep, len(after.Archives), len(after.Deltas), len(h.Deltas))
	}
	for _, d := range after.Deltas {
		if d.Seq <= after.Base.Seq && (len(h.Archives) == 0 || d.Seq <= h.Archives[len(h.Archives)-1].Seq) {
			t.Fatalf("delta %d kept, at or before the previous base", d.Seq)
		}
	}
	last := acked[len(acked)-1]
	if got, _ := restoredRows(t, b, "app.db"); got != last.rows {
		t.Fatal("after pruning, the latest state does not restore")
	}
	if _, _, err := restoreAt(t, b, "app.db", snapshot.RestoreOptions{At: acked[0].at}); !errors.Is(err, snapshot.ErrNotKept) {
		t.Fatalf("restore of an expired state: %v, want ErrNotKept", err)
	}
}

// A writer without retention, continuing a log that has archived bases,
// deletes only deltas when it compacts: its LIST of KEY.log/ skips the
// archives' names, which `bucketsqlite prune` removes.
func TestCompactionSkipsArchives(t *testing.T) {
	defer driver.SetLogPolicy(1<<30, 4, 256<<10)()
	b := bucket.NewMemory()
	write := func(params string, rounds int) {
		db, _ := openLog(t, b, "app.db", params)
		defer db.Close()
		mustExec(t, db, "CREATE TABLE IF NOT EXISTS t(x INTEGER PRIMARY KEY, v TEXT)")
		for round := range rounds {
			mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(round), 100))
			mustFlush(t, db)
		}
	}
	write("&retention=1h", 12)
	h, err := snapshot.ReadHistory(context.Background(), b, "app.db", snapshot.HistoryOptions{})
	if err != nil || len(h.Archives) < 2 {
		t.Fatalf("%v: %d archives after the writer with retention", err, len(h.Archives))
	}
	write("", 12)
	after, err := snapshot.ReadHistory(context.Background(), b, "app.db", snapshot.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Archives) != len(h.Archives) || after.Base.Seq <= h.Base.Seq || after.Deltas[0].Seq <= h.Deltas[0].Seq {
		t.Fatalf("after a writer without retention: %d archives (was %d), base %d (was %d), first delta %d (was %d)",
			len(after.Archives), len(h.Archives), after.Base.Seq, h.Base.Seq, after.Deltas[0].Seq, h.Deltas[0].Seq)
	}
}
