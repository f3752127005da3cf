//go:build cgo

package driver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// logSync is the strategy that ships only the pages that changed: KEY
// stays a complete SQLite file (the base), and each flush that changed
// something uploads one delta, KEY.log/SEQ, written with If-None-Match so
// that two writers never both write a sequence (docs/FORMAT.md).
//
// Capture costs what the change costs. Every connection to the working
// copy has auto-checkpoints off, so committed frames stay in the WAL until
// the driver checkpoints; a flush holds the write lock only while it reads
// the frames committed since the last flush (ReadWAL), and pins that exact
// state with a read transaction on a connection of its own. The pin keeps
// any checkpoint from restarting the WAL under the next capture, and is
// the consistent source of a new base. When the WAL grows past
// walRestartBytes, a flush that has captured everything restarts it; a
// write that slips in between, or a WAL reset by someone else, makes the
// next flush upload a new base instead: slower, never wrong.
type logSync struct {
	b            bucket.Bucket
	key          string
	keepPrevious bool
	retention    time.Duration
	tempDir      string
	walPath      string
	log          *slog.Logger
	open         func() (*sqlite3.SQLiteConn, error) // a connection for the pin
	writer       string
	// rollback: the working copy is in a rollback-journal mode, with no
	// WAL to capture from; every flush compares pages (diff).
	rollback bool
	// sums keeps the page checksums of l.im beside a persistent working
	// copy; nil for a temporary one.
	sums *pageSums

	pin     *sqlite3.SQLiteConn
	im      *snapshot.Image // what the bucket holds: base + deltas up to seq; nil: unknown
	baseSHA string
	baseSeq uint64
	seq     uint64
	pos     snapshot.WALPosition
	// armed reports that every frame up to pos was captured and copied
	// into the database file with the write lock held: the next writer
	// may restart the WAL, and a WAL found restarted since pos lost
	// nothing.
	armed    *snapshot.WALPosition
	needBase bool
	// unsent is a delta whose upload failed: the next flush sends it
	// again, byte for byte, before anything else, so that one that landed
	// all the same is recognised.
	unsent *pendingDelta
	// unconfirmed are the hashes of the latest bases whose upload
	// failed in a compaction, which the flush reports as a success: one
	// may have landed all the same, and a later Publish must recognise
	// it as this writer's, not another's.
	unconfirmed []string

	baseSize, sinceBase int64 // bytes of the base, and of the deltas since
	deltasSinceBase     int

	counts logCounts
}

// pendingDelta is an encoded delta and the state it leads to.
type pendingDelta struct {
	seq  uint64
	data []byte
	sha  string
	// pages and commit are its change, and post the image checksum
	// after it: l.im takes them once the delta is confirmed.
	pages  []snapshot.Page
	commit uint32
	post   uint64
	pos    snapshot.WALPosition
}

// logCounts feed Stats.
type logCounts struct {
	deltas      int64
	deltaBytes  int64
	compactions int64
	seq         uint64
}

// Compaction policy: a new base once the deltas since the last one add up
// to half its size (and at least compactMinBytes), or to compactDeltas of
// them (a restore downloads each). Variables, so that tests can make them
// small.
var (
	compactRatio    int64 = 2 // sinceBase*compactRatio >= baseSize
	compactDeltas         = 1000
	compactMinBytes int64 = 1 << 20
	// walRestartBytes is the WAL size past which a flush restarts it.
	walRestartBytes int64 = 16 << 20
)

var _ strategy = (*logSync)(nil)

func newLogSync(b bucket.Bucket, cfg *Config, wc *workingCopy, log *slog.Logger, restored snapshot.Info, p plan, kept *snapshot.Image) *logSync {
	host, _ := os.Hostname()
	l := &logSync{
		b: b, key: cfg.Key, keepPrevious: cfg.KeepPrevious, retention: cfg.Retention, tempDir: wc.dir(), walPath: wc.path + "-wal", log: log,
		open:     func() (*sqlite3.SQLiteConn, error) { return wc.openFlushConn() },
		writer:   fmt.Sprintf("%s/%d", host, os.Getpid()),
		rollback: cfg.sqliteParams().Get("_journal_mode") != "WAL",
	}
	switch {
	case p.action == actKeep && kept != nil && !p.dirty && p.remote.Image != "":
		// A persistent working copy, proven to hold exactly the state
		// after delta p.remote.Seq: the log goes on from it.
		l.im, l.baseSHA, l.baseSeq, l.seq = kept, p.remote.SHA256, p.remote.BaseSeq, p.remote.Seq
		l.baseSize = int64(kept.Pages()) * int64(kept.PageSize)
	case p.action == actKeep:
		// A persistent working copy ahead of the log (or of a plain
		// snapshot): its first flush ships what the working copy has and
		// the bucket lacks, found page by page against the page
		// checksums kept beside it when they are those of the state the
		// bucket holds, or else as a base that includes p.remote.Seq.
		l.needBase, l.seq, l.baseSeq, l.baseSHA = true, p.remote.Seq, p.remote.BaseSeq, p.remote.SHA256
		if im := loadSums(wc.path, p.remote.Image); im != nil && wc.persist {
			l.im, l.baseSize = im, int64(im.Pages())*int64(im.PageSize)
		}
	case !restored.Found:
		l.needBase = true // a new database: its first flush is a base
	case !restored.Log || restored.Image == nil:
		// A plain snapshot (the original's, or a full-sync writer's):
		// readers look for deltas only after a base that records a
		// sequence, so the first flush writes one.
		l.needBase = true
		l.baseSHA, l.baseSize = restored.SnapshotHash, restored.Size
	default:
		l.im, l.baseSHA, l.baseSeq, l.seq = restored.Image, restored.SnapshotHash, restored.BaseSeq, restored.Seq
		l.baseSize, l.sinceBase, l.deltasSinceBase = restored.Size, restored.DeltaBytes, restored.Deltas
	}
	l.counts.seq = l.seq
	if wc.persist {
		l.sums = &pageSums{path: sumsPath(wc.path)}
	}
	return l
}

func (l *logSync) flush(ctx context.Context, conn *sqlite3.SQLiteConn, remote remoteState, pending func(string) error) (shipped, error) {
	out, err := l.ship(ctx, conn, remote, pending)
	out.seq, out.baseSeq, out.pending = l.seq, l.baseSeq, slices.Clone(l.unconfirmed)
	if l.im != nil && !l.needBase {
		out.image = hexSum(l.im.Checksum)
	}
	return out, err
}

// ship is flush, less the log's position it reports.
func (l *logSync) ship(ctx context.Context, conn *sqlite3.SQLiteConn, remote remoteState, pending func(string) error) (shipped, error) {
	out := shipped{result: snapshot.Result{SnapshotHash: remote.SHA256, ETag: remote.ETag, PrevETag: remote.PrevETag}}
	if l.unsent != nil {
		if err := l.send(ctx, l.unsent, pending); err != nil {
			return out, err
		}
	}
	if l.rollback {
		// No WAL to read the changes from: compare pages.
		return l.diff(ctx, conn, remote, pending, snapshot.WALPosition{}, out)
	}
	ch, version, err := l.capture(ctx, conn)
	if err != nil {
		return out, err
	}
	out.version = version
	switch {
	case l.im == nil:
		return l.base(ctx, remote, pending, ch.Next, out)
	case l.needBase:
		// The WAL lost track of what changed since the image the bucket
		// holds: compare pages, from the pin.
		return l.diff(ctx, l.pin, remote, pending, ch.Next, out)
	}
	compact := l.compactionDue()
	if len(ch.Pages) == 0 {
		l.pos = ch.Next
		return out, nil // committed and undone, or only the pin moved
	}
	d, err := l.encodePages(sortedPages(ch.Pages), ch.Commit, ch.Next)
	if err != nil {
		return out, err
	}
	if err := l.send(ctx, d, pending); err != nil {
		return out, err
	}
	out.result.Uploaded, out.result.BytesWritten = true, int64(len(d.data))
	if compact {
		// The pin holds exactly the state the delta just shipped leads to.
		res, err := l.base(ctx, remote, pending, l.pos, out)
		if err != nil {
			l.compactionFailed(err)
			return out, nil
		}
		res.result.BytesWritten += int64(len(d.data))
		return res, nil
	}
	return out, nil
}

// begin pins the working copy's state before any other connection can
// write to it, and records how far its WAL goes: from then on no
// checkpoint can move a frame out of the WAL before a flush captured it,
// and a WAL reset is seen as one. Without it, a checkpoint between
// opening and the first flush (PRAGMA wal_checkpoint, or SQLite's own
// when the last connection closes) would fold writes into the database
// file where no capture looks, and the first flush would ship nothing.
// The WAL's frames at this point are part of the state l.im describes (a
// fresh restore has none; a kept working copy's are in its image). In a
// rollback-journal mode it does nothing: every flush compares pages.
func (l *logSync) begin(ctx context.Context, conn *sqlite3.SQLiteConn) error {
	if l.rollback {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return fmt.Errorf("wait for writers: %w", err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK", nil)
	ch, err := snapshot.ReadWAL(l.walPath, snapshot.WALPosition{})
	if err != nil {
		return fmt.Errorf("read the WAL: %w", err)
	}
	l.pos = ch.Next
	if !l.needBase {
		l.recorded(nil)
	}
	return l.repin(ctx)
}

// capture reads the frames committed since the last flush, holding the
// write lock only for that, and pins the state they lead to.
func (l *logSync) capture(ctx context.Context, conn *sqlite3.SQLiteConn) (*snapshot.WALChanges, int64, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return nil, 0, fmt.Errorf("wait for writers: %w", err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK", nil)
	version, err := snapshot.DataVersion(ctx, conn)
	if err != nil {
		return nil, 0, err
	}
	ch, err := snapshot.ReadWAL(l.walPath, l.pos)
	if errors.Is(err, snapshot.ErrWALReset) {
		if l.armed == nil || *l.armed != l.pos {
			// Frames may have left the WAL uncaptured: only a new base
			// is sure to hold them.
			l.needBase = true
		}
		// Armed, the WAL was restarted by a writer after every frame of
		// the old generation had been captured: read the new one.
		ch, err = snapshot.ReadWAL(l.walPath, snapshot.WALPosition{})
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the WAL: %w", err)
	}
	l.armed = nil
	if err := l.checkpoint(ctx, ch.Next); err != nil {
		return nil, 0, err
	}
	if err := l.repin(ctx); err != nil {
		return nil, 0, err
	}
	return ch, version, nil
}

// repin ends the pin's read transaction and starts a new one, at the
// state the write lock holds still.
func (l *logSync) repin(ctx context.Context) error {
	if l.pin == nil {
		pin, err := l.open()
		if err != nil {
			return fmt.Errorf("open the pin connection: %w", err)
		}
		if _, err := pin.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0", nil); err != nil {
			pin.Close()
			return err
		}
		l.pin = pin
	} else if _, err := l.pin.ExecContext(ctx, "ROLLBACK", nil); err != nil && !isNoTx(err) {
		return fmt.Errorf("end the pin: %w", err)
	}
	if _, err := l.pin.ExecContext(ctx, "BEGIN", nil); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	rows, err := l.pin.QueryContext(ctx, "SELECT count(*) FROM sqlite_schema", nil)
	if err == nil {
		err = rows.Next(make([]driver.Value, 1))
		rows.Close()
	}
	if err != nil {
		l.pin.ExecContext(context.Background(), "ROLLBACK", nil)
		return fmt.Errorf("pin: %w", err)
	}
	return nil
}

func hexSum(x uint64) string { return fmt.Sprintf("%016x", x) }

func isNoTx(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("no transaction is active"))
}

// unpin ends the pin's read transaction.
func (l *logSync) unpin() {
	if l.pin != nil {
		l.pin.ExecContext(context.Background(), "ROLLBACK", nil)
	}
}

// encodePages makes the delta of pages (in order, page 1 normalized) and
// the database size after them, commit, leading to WAL position pos.
func (l *logSync) encodePages(pages []snapshot.Page, commit uint32, pos snapshot.WALPosition) (*pendingDelta, error) {
	post, err := l.im.Preview(pages, commit)
	if err != nil {
		return nil, fmt.Errorf("apply the captured pages: %w", err)
	}
	d := &snapshot.Delta{
		Seq: l.seq + 1, Base: l.baseSHA, BaseSeq: l.baseSeq, PageSize: uint32(l.im.PageSize), Commit: commit,
		PreChecksum: l.im.Checksum, PostChecksum: post, Time: time.Now().UTC(), Writer: l.writer, Pages: pages,
	}
	var buf bytes.Buffer
	if _, err := d.Encode(&buf); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return &pendingDelta{seq: d.Seq, data: buf.Bytes(), sha: hex.EncodeToString(sum[:]), pages: pages, commit: commit, post: post, pos: pos}, nil
}

// send uploads d, If-None-Match, and confirms it with one Stat; a failed
// condition on an object that is d itself (an earlier attempt landed) is
// success.
func (l *logSync) send(ctx context.Context, d *pendingDelta, pending func(string) error) error {
	key := snapshot.LogKey(l.key, d.seq)
	// Recorded first, so that a restart finds it ours should it land and
	// the process stop before it returns.
	if err := pending(d.sha); err != nil {
		l.unsent = d
		return &snapshot.Error{Op: "flush", Key: key, Err: err}
	}
	_, err := l.b.Upload(ctx, key, bytes.NewReader(d.data), int64(len(d.data)),
		bucket.WriteOptions{IfNoneMatch: true, Metadata: map[string]string{snapshot.MetaSHA256: d.sha}})
	if err != nil && !errors.Is(err, bucket.ErrPrecondition) {
		l.unsent = d
		return &snapshot.Error{Op: "flush", Key: key, Err: err}
	}
	got, serr := l.b.Stat(ctx, key) // an answer without an ETag is an error (answered)
	switch {
	case serr != nil:
		l.unsent = d
		return &snapshot.Error{Op: "flush", Key: key, Err: fmt.Errorf("upload not confirmed: %w", serr)}
	case got.Size != int64(len(d.data)) || got.Metadata[snapshot.MetaSHA256] != d.sha:
		if err != nil {
			// Another writer's delta holds this sequence.
			l.unsent = nil
			return &snapshot.Error{Op: "flush", Key: key, Kind: snapshot.ErrConflict, Err: err}
		}
		l.unsent = d
		return &snapshot.Error{Op: "flush", Key: key, Err: fmt.Errorf("upload not confirmed: the object has %d bytes and sha256 %q, not the %d bytes with sha256 %s just uploaded",
			got.Size, got.Metadata[snapshot.MetaSHA256], len(d.data), d.sha)}
	}
	l.unsent = nil
	l.seq, l.pos = d.seq, d.pos
	if post, err := l.im.Update(d.pages, d.commit); err != nil || post != d.post {
		// Preview worked it out from this very image, so this is a bug:
		// the next flush writes a base rather than trust the image.
		l.im, l.needBase = nil, true
		l.log.Error("bucketsqlite: the log's image does not follow its delta; the next flush writes a base", "seq", d.seq, "err", err)
	}
	l.recorded(d.pages)
	l.sinceBase += int64(len(d.data))
	l.deltasSinceBase++
	l.counts.deltas++
	l.counts.deltaBytes += int64(len(d.data))
	l.counts.seq = l.seq
	return nil
}

// compactionFailed notes a compaction that failed. The log is whole
// without it, and the next flush tries again; but a base replaced by
// someone else (bucketsqlite compact, say) fails every attempt until this
// process reopens, and each attempt snapshots the whole database: after a
// conflict the next attempt waits for another compaction's worth of
// deltas.
func (l *logSync) compactionFailed(err error) {
	l.log.Warn("bucketsqlite: compaction failed", "err", err)
	if errors.Is(err, snapshot.ErrConflict) {
		l.sinceBase, l.deltasSinceBase = 0, 0
	}
}

func (l *logSync) compactionDue() bool {
	return l.deltasSinceBase >= compactDeltas ||
		(l.sinceBase >= compactMinBytes && l.sinceBase*compactRatio >= l.baseSize)
}

// stats adds the log's figures to st.
func (l *logSync) stats(st *Stats) {
	st.Seq, st.Deltas, st.DeltaBytes, st.Compactions = l.counts.seq, l.counts.deltas, l.counts.deltaBytes, l.counts.compactions
}

// close ends the pin.
func (l *logSync) close() {
	l.sums.close()
	if l.pin != nil {
		l.unpin()
		l.pin.Close()
		l.pin = nil
	}
}
