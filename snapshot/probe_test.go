package snapshot_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/faulty"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// The probe passes on every backend that enforces conditions, and leaves
// nothing behind.
func TestProbeConditions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b bucket.Bucket) {
		if err := snapshot.ProbeConditions(ctx, b, "db/app.db"); err != nil {
			t.Fatalf("ProbeConditions = %v; want nil", err)
		}
		if objs, err := bucket.ListAll(ctx, b, ""); err != nil || len(objs) != 0 {
			t.Fatalf("the probe left %v (%v)", objs, err)
		}
	})
}

// A bucket that ignores conditions, as s3rver does, is reported, naming
// both conditions, and the probe object is removed.
func TestProbeConditionsCatchesIgnoredConditions(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	r := fb.Inject(faulty.Any, faulty.Every, faulty.IgnoreConditions())
	err := snapshot.ProbeConditions(ctx, fb, "app.db")
	if !errors.Is(err, snapshot.ErrConditionsIgnored) || !errors.Is(err, snapshot.ErrSnapshot) {
		t.Fatalf("ProbeConditions = %v; want ErrConditionsIgnored", err)
	}
	for _, want := range []string{"If-None-Match", "If-Match", "app.db.probe"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if r.Fired() == 0 {
		t.Fatal("the fault never fired")
	}
	if objs, _ := bucket.ListAll(ctx, fb.Inner(), ""); len(objs) != 0 {
		t.Fatalf("the probe left %v", objs)
	}
}

// A probe left by a crashed probe is replaced; anything else at KEY.probe
// is left alone.
func TestProbeConditionsObjectInTheWay(t *testing.T) {
	b := bucket.NewMemory()
	// What a probe killed before its cleanup leaves.
	upload(t, b, "app.db.probe", []byte("stale"), map[string]string{snapshot.MetaKeySHA256: hashOfKey("app.db")})
	if err := snapshot.ProbeConditions(ctx, b, "app.db"); err != nil {
		t.Fatalf("ProbeConditions over a stale probe = %v", err)
	}
	foreign := upload(t, b, "app.db.probe", []byte("someone's"), nil)
	if err := snapshot.ProbeConditions(ctx, b, "app.db"); !errors.Is(err, snapshot.ErrForeignObject) {
		t.Fatalf("ProbeConditions over a foreign object = %v; want ErrForeignObject", err)
	}
	if a, err := b.Stat(ctx, "app.db.probe"); err != nil || a.ETag != foreign.ETag {
		t.Fatalf("the foreign object changed: %+v, %v", a, err)
	}
	if err := snapshot.ProbeConditions(ctx, b, "app.db.prev"); !errors.Is(err, bucket.ErrInvalidKey) {
		t.Fatalf("ProbeConditions(app.db.prev) = %v; want ErrInvalidKey", err)
	}
}

// A probe of a killed process can land after it died, between this
// probe's look at KEY.probe and its create: that object, being a probe's,
// is removed and the probe starts again instead of failing the flush.
func TestProbeConditionsLateProbe(t *testing.T) {
	fb := faulty.New(bucket.NewMemory())
	sum := sha256.Sum256([]byte("app.db"))
	upload(t, fb.Inner(), "app.db.probe", []byte("a probe that landed late"),
		map[string]string{snapshot.MetaKeySHA256: hex.EncodeToString(sum[:])})
	// The first look misses it, as it would if it landed just after.
	miss := fb.Inject(faulty.Stat, 1, faulty.Fail(bucket.ErrNotFound))
	if err := snapshot.ProbeConditions(ctx, fb, "app.db"); err != nil {
		t.Fatalf("probe with a late probe object in the way: %v", err)
	}
	if miss.Fired() != 1 {
		t.Fatalf("the fault fired %d times", miss.Fired())
	}
	if _, err := fb.Inner().Stat(ctx, "app.db.probe"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("the probe object was left behind: %v", err)
	}
}
