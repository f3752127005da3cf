package snapshot

import (
	"slices"
	"testing"
	"time"
)

func TestParseLogName(t *testing.T) {
	tests := []struct {
		name    string
		seq     uint64
		archive bool
		ok      bool
	}{
		{"0000000000000042", 42, false, true},
		{"0000000000000042.base", 42, true, true},
		{"0000000000000000.base", 0, true, true},
		{"42", 0, false, false},
		{"0000000000000042.tmp", 0, false, false},
		{"000000000000004x", 0, false, false},
		{"+000000000000042", 0, false, false},
	}
	for _, tt := range tests {
		seq, archive, ok := parseLogName(tt.name)
		if seq != tt.seq || archive != tt.archive || ok != tt.ok {
			t.Errorf("parseLogName(%q) = %d, %v, %v; want %d, %v, %v", tt.name, seq, archive, ok, tt.seq, tt.archive, tt.ok)
		}
	}
}

// planPrune keeps the newest base at or before now - retention and all
// after it, never the deltas of the base before the current one, and
// nothing at all while every base is younger than the retention.
func TestPlanPrune(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	hour := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	base := func(kind VersionKind, seq uint64, at time.Time) Version {
		k := "k"
		switch kind {
		case KindArchive:
			k = ArchiveKey("k", seq)
		case KindPrev:
			k = PrevKey("k")
		}
		return Version{Kind: kind, Key: k, Seq: seq, Log: true, Time: at}
	}
	// Bases at sequences 0 (-10h), 10 (-6h), 20 (-3h), current 30 (-1h);
	// deltas 1 .. 35.
	h := &History{Key: "k", Base: &Version{Kind: KindBase, Key: "k", Seq: 30, Log: true, Time: hour(-1)}}
	h.Archives = []Version{base(KindArchive, 0, hour(-10)), base(KindArchive, 10, hour(-6)), base(KindArchive, 20, hour(-3))}
	for seq := uint64(1); seq <= 35; seq++ {
		h.Deltas = append(h.Deltas, Version{Kind: KindDelta, Key: LogKey("k", seq), Seq: seq, Log: true})
	}
	deltas := func(from, to uint64) []string {
		var out []string
		for seq := from; seq <= to; seq++ {
			out = append(out, LogKey("k", seq))
		}
		return out
	}
	tests := []struct {
		retention time.Duration
		keep      uint64
		deleted   []string
	}{
		{0, 30, append([]string{ArchiveKey("k", 0), ArchiveKey("k", 10), ArchiveKey("k", 20)}, deltas(1, 20)...)},
		{2 * time.Hour, 20, append([]string{ArchiveKey("k", 0), ArchiveKey("k", 10)}, deltas(1, 20)...)},
		{4 * time.Hour, 10, append([]string{ArchiveKey("k", 0)}, deltas(1, 10)...)},
		{8 * time.Hour, 0, nil},
		{20 * time.Hour, 0, nil}, // no base that old: keep everything
	}
	for _, tt := range tests {
		res := planPrune(h, PruneOptions{Retention: tt.retention, Now: now})
		if tt.retention == 20*time.Hour {
			if res.Keep != nil || len(res.Deleted) != 0 {
				t.Errorf("retention %v: keep %+v, delete %v; want nothing deleted", tt.retention, res.Keep, res.Deleted)
			}
			continue
		}
		if res.Keep == nil || res.Keep.Seq != tt.keep || !slices.Equal(res.Deleted, tt.deleted) {
			t.Errorf("retention %v: keep %+v, delete %v; want keep %d, delete %v", tt.retention, res.Keep, res.Deleted, tt.keep, tt.deleted)
		}
	}
	// Without an archived or previous base, the grace falls back to the
	// current base's sequence.
	plain := &History{Key: "k", Base: h.Base, Deltas: h.Deltas}
	if res := planPrune(plain, PruneOptions{Now: now}); !slices.Equal(res.Deleted, deltas(1, 30)) {
		t.Errorf("no previous base: delete %v", res.Deleted)
	}
	// A base without a log has nothing to prune.
	if res := planPrune(&History{Key: "k", Base: &Version{Kind: KindBase}, Deltas: h.Deltas}, PruneOptions{Now: now}); len(res.Deleted) != 0 {
		t.Errorf("plain snapshot: delete %v", res.Deleted)
	}
}

func TestDeltaHeaderInfo(t *testing.T) {
	at := time.Date(2026, 11, 29, 17, 5, 0, 123456789, time.UTC)
	d := &Delta{Seq: 3, BaseSeq: 2, Base: keyHash("x"), PageSize: 512, Commit: 1, Time: at, Writer: "host/42"}
	var buf memWriter
	if _, err := d.Encode(writerAt{&buf}); err != nil {
		t.Fatal(err)
	}
	got, w, err := deltaHeaderInfo(buf.buf)
	if err != nil || !got.Equal(at) || w != "host/42" {
		t.Fatalf("deltaHeaderInfo = %v, %q, %v", got, w, err)
	}
	if _, _, err := deltaHeaderInfo([]byte("SQLite format 3\x00")); err == nil {
		t.Fatal("a non-delta was read as a delta")
	}
}

// writerAt appends to a memWriter.
type writerAt struct{ w *memWriter }

func (a writerAt) Write(p []byte) (int, error) { return a.w.WriteAt(p, int64(len(a.w.buf))) }
