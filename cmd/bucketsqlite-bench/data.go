package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/snapshot"
)

// seedVersion changes whenever buildDB would build a different database
// from the same size and seed, so that a -dir kept from an older build is
// not reused.
const seedVersion = 1

// seedSchema is an application's table: small rows, two indexes, so that
// PRAGMA integrity_check has real work (it is O(N log N) in the indexes).
const seedSchema = `
CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL);
CREATE INDEX events_ts ON events(ts);
CREATE INDEX events_kind_ts ON events(kind, ts);
CREATE TABLE bench_meta(version INTEGER, target INTEGER, seed INTEGER);
`

// seedDB is a seeded database: a local file and its snapshot in the bucket.
type seedDB struct {
	target int64  // the size asked for
	path   string // the local file, a plain rollback-journal database
	key    string // its snapshot in the bucket
	size   int64  // the file's (and the snapshot's) size
}

// buildDB builds, or reuses from an earlier run with the same -dir, the
// seeded database of about target bytes at path.
func buildDB(ctx context.Context, path string, target int64, seed uint64) error {
	if reusable(path, target, seed) {
		return nil
	}
	for _, side := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + side)
	}
	tmp := path + ".building"
	os.Remove(tmp)
	db, err := sql.Open("sqlite3", snapshot.FileDSN(tmp, url.Values{
		"_journal_mode": {"OFF"}, "_synchronous": {"OFF"},
	}))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, seedSchema); err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, "INSERT INTO events(ts, kind, body) VALUES (?, ?, ?)")
	if err != nil {
		return err
	}
	kinds := []string{"signup", "login", "logout", "view", "click", "purchase", "refund", "search",
		"share", "comment", "like", "follow", "upload", "download", "error", "ping"}
	rng := rand.New(rand.NewPCG(seed, uint64(target)))
	body := make([]byte, 700)
	ts := int64(1_700_000_000_000)
	for i := 0; ; i++ {
		if i%4096 == 0 {
			var pages, pageSize int64
			if err := tx.QueryRowContext(ctx, "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size").Scan(&pages, &pageSize); err != nil {
				return err
			}
			if pages*pageSize >= target {
				break
			}
		}
		n := 100 + rng.IntN(600)
		for j := 0; j < n; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < n; k++ {
				body[j+k] = byte(v >> (8 * k))
			}
		}
		ts += rng.Int64N(2000)
		if _, err := ins.ExecContext(ctx, ts, kinds[rng.IntN(len(kinds))], body[:n]); err != nil {
			return fmt.Errorf("build %s: %w", path, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO bench_meta VALUES (?, ?, ?)", seedVersion, target, int64(seed)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// reusable reports whether path holds the database buildDB would build.
func reusable(path string, target int64, seed uint64) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	db, err := sql.Open("sqlite3", snapshot.FileDSN(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return false
	}
	defer db.Close()
	var v, t, s int64
	err = db.QueryRow("SELECT version, target, seed FROM bench_meta").Scan(&v, &t, &s)
	return err == nil && v == seedVersion && t == target && s == int64(seed)
}

// prepareSeed builds the seeded database of about target bytes and
// uploads it as a snapshot (with its SHA-256 in the metadata, as a flush
// would) to its own key.
func (b *bench) prepareSeed(ctx context.Context, target int64) (*seedDB, error) {
	if s, ok := b.seeds[target]; ok {
		return s, nil
	}
	name := fmt.Sprintf("seed-%d", target)
	s := &seedDB{target: target, path: filepath.Join(b.dir, name+".db"), key: name + ".db"}
	b.logf("building the %s database %s", b.sizeName(target), s.path)
	if err := buildDB(ctx, s.path, target, 1); err != nil {
		return nil, err
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return nil, err
	}
	s.size = st.Size()
	c, err := (&sqlite3.SQLiteDriver{}).Open(snapshot.FileDSN(s.path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b.logf("uploading it to %s", s.key)
	if _, err := snapshot.Flush(ctx, c.(*sqlite3.SQLiteConn), b.bk, s.key, snapshot.FlushOptions{Force: true, TempDir: b.dir}); err != nil {
		return nil, err
	}
	b.seeds[target] = s
	return s, nil
}
