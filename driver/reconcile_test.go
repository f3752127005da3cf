package driver

import (
	"errors"
	"testing"
)

// TestReconcile covers every branch of the decision a first connection
// takes about its working copy, with neither SQLite nor a bucket: each row
// gives the facts known so far and the plan expected from them.
func TestReconcile(t *testing.T) {
	const bkt, key = "mem://b", "app.db"
	rec := func(etag, sha string, dirty bool, pending ...string) *syncState {
		return &syncState{Bucket: bkt, Key: key, ETag: etag, SHA256: sha, Dirty: dirty, Pending: pending}
	}
	found := func(etag, sha string) remoteFacts {
		return remoteFacts{Known: true, Found: true, ETag: etag, SHA256: sha}
	}
	missing := remoteFacts{Known: true}
	missingProven := remoteFacts{Known: true, Answers: true}
	keep := func(etag, sha string, dirty bool) plan {
		return plan{action: actKeep, remote: remoteState{ETag: etag, SHA256: sha}, dirty: dirty}
	}
	for _, tc := range []struct {
		name    string
		local   localFacts
		remote  remoteFacts
		want    plan
		wantErr error // for actRefuse
	}{
		// No working copy: restore (RestoreFile proves the bucket answers).
		{"no working copy", localFacts{}, remoteFacts{}, plan{action: actRestore}, nil},

		// A record of another database is never adopted (issue 11 #7).
		{"record of another key", localFacts{Exists: true, Record: &syncState{Bucket: bkt, Key: "a.db"}}, remoteFacts{},
			plan{action: actRefuse}, errForeignCopy},
		{"record of another bucket", localFacts{Exists: true, Record: &syncState{Bucket: "mem://other", Key: key}}, remoteFacts{},
			plan{action: actRefuse}, errForeignCopy},

		// The bucket is asked first, and "not found" must be proven.
		{"stat first", localFacts{Exists: true, Record: rec("e1", "h1", false)}, remoteFacts{}, plan{need: needStat}, nil},
		{"not found needs proof (issue 11 #2)", localFacts{Exists: true, Record: rec("e1", "h1", true)}, missing, plan{need: needProof}, nil},
		{"unknown copy, not found needs proof", localFacts{Exists: true}, missing, plan{need: needProof}, nil},

		// Current: ETag as recorded.
		{"clean and current: content checked (issue 11 #3)", localFacts{Exists: true, Record: rec("e1", "h1", false)}, found("e1", "h1"),
			plan{need: needHash}, nil},
		{"clean and current, content as recorded", localFacts{Exists: true, Record: rec("e1", "h1", false), Hash: "h1"}, found("e1", "h1"),
			keep("e1", "h1", false), nil},
		{"clean and current, content changed behind the record", localFacts{Exists: true, Record: rec("e1", "h1", false), Hash: "h0"}, found("e1", "h1"),
			plan{action: actRefuse}, ErrDiverged},
		{"ahead: checked first (issue 11 #1)", localFacts{Exists: true, Record: rec("e1", "h1", true)}, found("e1", "h1"),
			plan{need: needCheck}, nil},
		{"ahead and sound: kept and flushed", localFacts{Exists: true, Record: rec("e1", "h1", true), Checked: true}, found("e1", "h1"),
			keep("e1", "h1", true), nil},
		{"clean record without a hash: flushed", localFacts{Exists: true, Record: rec("e1", "", false), Checked: true}, found("e1", "h1"),
			keep("e1", "", true), nil},

		// Gone from the bucket: the working copy is the only copy, and the
		// bucket holds nothing, so the flush must upload (issue 11 #5).
		{"snapshot gone, clean", localFacts{Exists: true, Record: rec("e1", "h1", false), Checked: true}, missingProven,
			keep("", "", true), nil},
		{"snapshot gone, dirty: checked first", localFacts{Exists: true, Record: rec("e1", "h1", true)}, missingProven,
			plan{need: needCheck}, nil},

		// Our own unconfirmed upload landed.
		{"own upload landed", localFacts{Exists: true, Record: rec("e1", "h1", true, "h2"), Checked: true}, found("e2", "h2"),
			keep("e2", "", true), nil},
		{"own upload landed at the same ETag", localFacts{Exists: true, Record: rec("e1", "h1", false, "h2"), Checked: true}, found("e1", "h2"),
			keep("e1", "", true), nil},

		// The bucket moved on.
		{"dirty and changed: diverged", localFacts{Exists: true, Record: rec("e1", "h1", true)}, found("e2", "h2"),
			plan{action: actRefuse}, ErrDiverged},
		{"clean and behind: content checked (issue 11 #6)", localFacts{Exists: true, Record: rec("e1", "h1", false)}, found("e2", "h2"),
			plan{need: needHash}, nil},
		{"clean and behind: restored", localFacts{Exists: true, Record: rec("e1", "h1", false), Hash: "h1"}, found("e2", "h2"),
			plan{action: actRestore}, nil},
		{"changed behind the record and behind: diverged", localFacts{Exists: true, Record: rec("e1", "h1", false), Hash: "hx"}, found("e2", "h2"),
			plan{action: actRefuse}, ErrDiverged},

		// sync=log: the base's ETag is the record's, but the log moved on.
		{"log moved on, clean: content checked", localFacts{Exists: true, Record: rec("e1", "h1", false)},
			remoteFacts{Known: true, Found: true, ETag: "e1", SHA256: "h1", LogNext: "d9"}, plan{need: needHash}, nil},
		{"log moved on, clean: restored", localFacts{Exists: true, Record: rec("e1", "h1", false), Hash: "h1"},
			remoteFacts{Known: true, Found: true, ETag: "e1", SHA256: "h1", LogNext: "d9"}, plan{action: actRestore}, nil},
		{"log moved on, dirty: diverged", localFacts{Exists: true, Record: rec("e1", "h1", true)},
			remoteFacts{Known: true, Found: true, ETag: "e1", SHA256: "h1", LogNext: "d9"}, plan{action: actRefuse}, ErrDiverged},
		{"own delta landed: kept and flushed", localFacts{Exists: true, Record: rec("e1", "h1", true, "d9"), Checked: true},
			remoteFacts{Known: true, Found: true, ETag: "e1", SHA256: "h1", LogNext: "d9"}, keep("e1", "h1", true), nil},

		// No record.
		{"unknown copy, no snapshot: checked first", localFacts{Exists: true}, missingProven, plan{need: needCheck}, nil},
		{"unknown copy, no snapshot: adopted", localFacts{Exists: true, Checked: true}, missingProven, keep("", "", true), nil},
		{"unknown copy, snapshot: hashed", localFacts{Exists: true}, found("e1", "h1"), plan{need: needHash}, nil},
		{"unknown copy equal to the snapshot: kept", localFacts{Exists: true, Hash: "h1"}, found("e1", "h1"), keep("e1", "h1", false), nil},
		{"unknown copy differs: diverged", localFacts{Exists: true, Hash: "h0"}, found("e1", "h1"), plan{action: actRefuse}, ErrDiverged},
		{"unknown copy, snapshot without a hash: diverged", localFacts{Exists: true, Hash: "h0"}, found("e1", ""), plan{action: actRefuse}, ErrDiverged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := reconcile(bkt, key, tc.local, tc.remote)
			if tc.wantErr != nil {
				if got.action != actRefuse || !errors.Is(got.err, tc.wantErr) {
					t.Fatalf("got %+v, want a refusal matching %v", got, tc.wantErr)
				}
				return
			}
			got.why = ""
			if got.err != nil || got.need != tc.want.need || got.action != tc.want.action || got.dirty != tc.want.dirty ||
				got.remote.ETag != tc.want.remote.ETag || got.remote.SHA256 != tc.want.remote.SHA256 {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A plan asks for each fact at most once: answering what it asks always
// leads to a decision.
func TestReconcileTerminates(t *testing.T) {
	records := []*syncState{nil,
		{Bucket: "b", Key: "k", ETag: "e1", SHA256: "h1"},
		{Bucket: "b", Key: "k", ETag: "e1", SHA256: "h1", Dirty: true},
		{Bucket: "b", Key: "k", ETag: "e1", SHA256: "h1", Pending: []string{"h2"}}}
	remotes := []remoteFacts{{Known: true}, {Known: true, Found: true, ETag: "e1", SHA256: "h1"},
		{Known: true, Found: true, ETag: "e2", SHA256: "h2"}, {Known: true, Found: true, ETag: "e2"}}
	for _, rec := range records {
		for _, remote := range remotes {
			for _, hash := range []string{"h1", "h0"} {
				l, r := localFacts{Exists: true, Record: rec}, remoteFacts{}
				for i := 0; ; i++ {
					if i > 5 {
						t.Fatalf("record %+v, remote %+v: no decision after 5 facts", rec, remote)
					}
					p := reconcile("b", "k", l, r)
					switch p.need {
					case needStat:
						r = remote
						continue
					case needProof:
						r.Answers = true
						continue
					case needHash:
						l.Hash = hash
						continue
					case needCheck:
						l.Checked = true
						continue
					}
					if p.action == actKeep && p.dirty && !l.Checked {
						t.Fatalf("record %+v, remote %+v: a working copy flushed over the bucket without a check", rec, remote)
					}
					break
				}
			}
		}
	}
}

// A working copy that finds a base of its own at the key (sync=log) goes
// on after the last of its deltas in the bucket: the base's sequence, the
// one it recorded, or its unconfirmed delta after that; another writer's
// delta after it is not its own.
func TestReconcileOwnBaseSequence(t *testing.T) {
	const bkt, key = "mem://b", "app.db"
	rec := func(seq uint64, dirty bool, pending ...string) *syncState {
		return &syncState{Bucket: bkt, Key: key, ETag: "e1", SHA256: "h1", Seq: seq, Dirty: dirty, Pending: pending}
	}
	base := func(seq uint64, next string) remoteFacts {
		return remoteFacts{Known: true, Found: true, ETag: "e2", SHA256: "h2", Seq: seq, LogNext: next}
	}
	for _, tc := range []struct {
		name     string
		rec      *syncState
		remote   remoteFacts
		keep     bool
		seq      uint64
		diverged bool
	}{
		{"killed in its compaction", rec(7, true, "d8", "h2"), base(8, "d8"), true, 8, false},
		{"deltas confirmed after it", rec(10, true, "h2"), base(8, ""), true, 10, false},
		{"an unconfirmed delta after those", rec(10, true, "h2", "d11"), base(8, "d11"), true, 11, false},
		{"clean, deltas confirmed after it", rec(10, false, "h2"), base(8, ""), true, 10, false},
		{"another writer's delta after it", rec(10, true, "h2"), base(8, "x11"), false, 0, true},
		{"a plain snapshot of its own", rec(0, true, "h2"), base(0, ""), true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := reconcile(bkt, key, localFacts{Exists: true, Record: tc.rec, Checked: true, Hash: "h0"}, tc.remote)
			switch {
			case tc.diverged:
				if got.action != actRefuse || !errors.Is(got.err, ErrDiverged) {
					t.Fatalf("got %+v, want ErrDiverged", got)
				}
			case got.action != actKeep || !got.dirty || got.remote.ETag != "e2" || got.remote.Seq != tc.seq || got.remote.BaseSeq != tc.remote.Seq:
				t.Fatalf("got %+v, want the working copy kept and flushed, at sequence %d after a base at %d", got, tc.seq, tc.remote.Seq)
			}
		})
	}
}
