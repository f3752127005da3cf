package driver

import (
	"errors"
	"fmt"
	"slices"
)

// The decision a first connection takes about its working copy is the
// most safety-critical one the driver makes: keep a local file that holds
// writes the bucket lacks, replace one the bucket is ahead of, or refuse
// to touch either side. It is a pure function of what is known about both
// sides, so that every branch is a row of a table test; restore (in
// connector.go) only gathers the facts reconcile asks for and carries out
// the plan.

// localFacts is what is known about a working copy.
type localFacts struct {
	// Exists reports that the working copy's file exists.
	Exists bool
	// Record is its sync record, nil when there is none or it cannot be
	// read (a working copy without a trustworthy record is unknown).
	Record *syncState
	// Hash is the SHA-256 of a snapshot of the working copy, once
	// reconcile asked for it (needHash).
	Hash string
	// Checked reports that the working copy passed quick_check, once
	// reconcile asked for it (needCheck). A failed check is an error of
	// its own and never reaches reconcile.
	Checked bool
}

// remoteFacts is what is known about the snapshot in the bucket.
type remoteFacts struct {
	// Known reports that the bucket was asked (Stat).
	Known bool
	// Found reports that an object exists at the key.
	Found bool
	// ETag and SHA256 describe that object (SHA256 from its metadata).
	ETag, SHA256 string
	// Seq is the sequence the object records as a base of a delta log
	// (its seq metadata), 0 when none.
	Seq uint64
	// LogNext is the SHA-256 (metadata) of the delta after the sequence
	// the sync record holds, "" when there is none (sync=log): set, the
	// bucket moved on even if the base's ETag did not.
	LogNext string
	// Answers reports that the bucket was proven to exist and to accept
	// the credentials (a List succeeded), once reconcile asked (needProof).
	// A Stat that finds nothing proves neither: a missing bucket, and on
	// some servers an unknown access key, also answer "not found".
	Answers bool
}

// need is a fact reconcile lacks; the caller gathers it and asks again.
type need int

const (
	needNothing need = iota
	needStat         // Stat the key
	needProof        // List the bucket, to prove that "not found" means it
	needHash         // hash a snapshot of the working copy
	needCheck        // run quick_check on the working copy
)

// action is what the plan does with the working copy.
type action int

const (
	// actRestore downloads the snapshot over the working copy (or starts
	// a new database when there is none).
	actRestore action = iota
	// actKeep keeps the working copy as it is.
	actKeep
	// actRefuse touches nothing and fails with plan.err.
	actRefuse
)

// plan is reconcile's answer.
type plan struct {
	need   need
	action action
	// remote is what the bucket holds, for the syncer (actKeep).
	remote remoteState
	// dirty reports that the working copy may hold writes the bucket
	// lacks, so the first flush must upload (actKeep).
	dirty bool
	// err explains actRefuse. It names no path or location: the caller
	// adds them.
	err error
	// why says, for the log, why the working copy is kept.
	why string
}

// errForeignCopy is a working copy whose record names another database.
var errForeignCopy = errors.New("the working copy belongs to another database")

// reconcile decides what to do with a working copy, given its facts and
// the bucket's, for the database bucketName/key. It asks for one more
// fact (plan.need) until it can decide.
func reconcile(bucketName, key string, l localFacts, r remoteFacts) plan {
	if !l.Exists {
		// Nothing local to lose: the restore proves the bucket answers
		// before it calls a missing snapshot a new database.
		return plan{action: actRestore}
	}
	rec := l.Record
	if rec != nil && (rec.Bucket != bucketName || rec.Key != key) {
		return refuse(fmt.Errorf("%w: its sync record names %s/%s", errForeignCopy, rec.Bucket, rec.Key))
	}
	if !r.Known {
		return plan{need: needStat}
	}
	if !r.Found && !r.Answers {
		return plan{need: needProof}
	}
	if rec == nil {
		return reconcileUnknown(l, r)
	}
	// A base of this working copy's that replaced the one it recorded
	// may have deltas of its own after it (a compaction whose base
	// landed unconfirmed, and the flushes after it).
	ownLog := r.LogNext == "" || (r.ETag != rec.ETag && slices.Contains(rec.Pending, r.LogNext))
	ownUpload := r.Found && r.SHA256 != "" && slices.Contains(rec.Pending, r.SHA256) && ownLog
	ownDelta := r.Found && r.ETag == rec.ETag && r.LogNext != "" && slices.Contains(rec.Pending, r.LogNext)
	switch {
	case !r.Found:
		// The snapshot is gone (deleted by hand, or a bucket emptied):
		// the working copy is the only copy. The bucket holds nothing, so
		// the first flush uploads whatever the hash, conditional on there
		// still being nothing.
		return keepChecked(l, remoteState{},
			"the snapshot the working copy was synced with is gone; keeping the working copy and flushing it")
	case ownDelta:
		// This working copy's own delta, which landed though the process
		// stopped before recording it: the working copy holds its state
		// and maybe more.
		remote := rec.remote()
		remote.Seq, remote.Image = rec.Seq+1, ""
		return keepChecked(l, remote, "the bucket holds a delta of this working copy that was never confirmed; keeping the working copy and flushing it")
	case r.ETag == rec.ETag && !ownUpload && r.LogNext == "":
		if rec.Dirty || rec.SHA256 == "" {
			return keepChecked(l, rec.remote(), "the working copy holds writes the bucket lacks; keeping it and flushing it")
		}
		// The record says the working copy is the snapshot. Trust the
		// content, not the record: a file put back from an older backup,
		// or changed by a write no commit hook saw, would otherwise be
		// uploaded over newer data, or its writes lost.
		if l.Hash == "" {
			return plan{need: needHash}
		}
		if l.Hash != rec.remote().state() {
			return refuse(fmt.Errorf("%w: the working copy changed without bucketsqlite recording it (a file put back by hand, "+
				"or a write no commit hook saw) while the bucket still holds the snapshot it was synced with; both are kept",
				ErrDiverged))
		}
		return plan{action: actKeep, remote: rec.remote()}
	case ownUpload:
		// This working copy's own upload, which landed though the process
		// stopped (or the call failed) before recording it. The working
		// copy holds all of it and maybe more; the hash stays unknown so
		// the next flush uploads even an identical snapshot over one a
		// faulty backend might have torn.
		// With a log, the base records the sequence it includes, and
		// this writer's deltas may follow it: the log goes on after both,
		// never from a sequence a delta holds.
		seq := max(r.Seq, rec.Seq)
		if r.LogNext != "" {
			seq = max(seq, rec.Seq+1)
		}
		return keepChecked(l, remoteState{ETag: r.ETag, Seq: seq, BaseSeq: r.Seq},
			"the bucket holds an upload of this working copy that was never confirmed; keeping the working copy and flushing it")
	case rec.Dirty:
		return refuse(fmt.Errorf("%w: the working copy holds writes that were never flushed, and the snapshot changed since "+
			"it was last synced (%s); both are kept", ErrDiverged, howChanged(rec, r)))
	}
	// The bucket moved on from a clean working copy: restore over it, but
	// only once the working copy is proven to be what the record says.
	if l.Hash == "" {
		return plan{need: needHash}
	}
	if l.Hash != rec.remote().state() {
		return refuse(fmt.Errorf("%w: the working copy changed without bucketsqlite recording it, and the snapshot changed too "+
			"(%s); both are kept", ErrDiverged, howChanged(rec, r)))
	}
	return plan{action: actRestore}
}

// howChanged says how the bucket moved on from what rec describes.
func howChanged(rec *syncState, r remoteFacts) string {
	if r.ETag == rec.ETag && r.LogNext != "" {
		return fmt.Sprintf("its log has a delta after sequence %d", rec.Seq)
	}
	return fmt.Sprintf("ETag %s, now %s", rec.ETag, r.ETag)
}

// reconcileUnknown decides for a working copy without a sync record.
func reconcileUnknown(l localFacts, r remoteFacts) plan {
	if !r.Found {
		return keepChecked(l, remoteState{}, "adopting the existing working copy; the first flush creates the snapshot")
	}
	if l.Hash == "" {
		return plan{need: needHash}
	}
	if r.SHA256 == "" || l.Hash != r.SHA256 {
		return refuse(fmt.Errorf("%w: the working copy has no sync record and differs from the snapshot; both are kept", ErrDiverged))
	}
	return plan{action: actKeep, remote: remoteState{ETag: r.ETag, SHA256: l.Hash}}
}

// keepChecked keeps a working copy that the bucket lacks, to be flushed,
// once it passed quick_check: a copy recovered from a crash (or of unknown
// origin) must be sound before it can replace anything.
func keepChecked(l localFacts, remote remoteState, why string) plan {
	if !l.Checked {
		return plan{need: needCheck}
	}
	return plan{action: actKeep, remote: remote, dirty: true, why: why}
}

func refuse(err error) plan { return plan{action: actRefuse, err: err} }
