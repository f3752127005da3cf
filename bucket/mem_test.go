package bucket_test

import (
	"bytes"
	"context"
	"maps"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/buckettest"
)

func TestMemoryConformance(t *testing.T) {
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket { return bucket.NewMemory() },
	})
}

func TestMemRegistry(t *testing.T) {
	ctx := context.Background()
	name := t.Name()
	t.Cleanup(func() { bucket.ForgetMem(name) })
	a := bucket.Mem(name)
	if a != bucket.Mem(name) {
		t.Fatal("Mem returned two buckets for one name")
	}
	if a == bucket.Mem(name+"-other") {
		t.Fatal("Mem returned one bucket for two names")
	}
	bucket.ForgetMem(name + "-other")
	if _, err := a.Upload(ctx, "k", bytes.NewReader([]byte("v")), 1, bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bucket.Mem(name).Stat(ctx, "k"); err != nil {
		t.Fatalf("object uploaded through one Mem(name) not seen through another: %v", err)
	}

	bucket.ForgetMem(name)
	fresh := bucket.Mem(name)
	if fresh == a {
		t.Fatal("Mem after ForgetMem returned the forgotten bucket")
	}
	if all, err := bucket.ListAll(ctx, fresh, ""); err != nil || len(all) != 0 {
		t.Fatalf("Mem after ForgetMem is not empty: %v, %v", all, err)
	}
	if _, err := a.Stat(ctx, "k"); err != nil {
		t.Fatalf("the forgotten bucket lost its object: %v", err)
	}
}

// TestMemoryCopies checks that callers never share stored bytes or maps.
func TestMemoryCopies(t *testing.T) {
	ctx := context.Background()
	m := bucket.NewMemory()
	p := []byte("original")
	md := map[string]string{"k": "v"}
	up, err := m.Upload(ctx, "obj", bytes.NewReader(p), int64(len(p)), bucket.WriteOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	copy(p, "CHANGED!")
	md["k"] = "changed"
	up.Metadata["k"] = "changed too"

	st, err := m.Stat(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(st.Metadata, map[string]string{"k": "v"}) {
		t.Fatalf("stored metadata changed with the caller's maps: %v", st.Metadata)
	}
	st.Metadata["k"] = "changed by a Stat caller"

	var w sliceWriter
	da, err := m.Download(ctx, "obj", &w)
	if err != nil {
		t.Fatal(err)
	}
	if string(w.p) != "original" {
		t.Fatalf("stored content changed with the caller's slice: %q", w.p)
	}
	if da.Metadata["k"] != "v" {
		t.Fatalf("stored metadata changed through a Stat result: %v", da.Metadata)
	}
	copy(w.p, "CHANGED!")
	var w2 sliceWriter
	if _, err := m.Download(ctx, "obj", &w2); err != nil || string(w2.p) != "original" {
		t.Fatalf("stored content changed through a Download's buffer: %q, %v", w2.p, err)
	}
}

// sliceWriter is a minimal io.WriterAt for sequential, single-goroutine use.
type sliceWriter struct{ p []byte }

func (w *sliceWriter) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.p) {
		w.p = append(w.p, make([]byte, end-len(w.p))...)
	}
	return copy(w.p[off:], p), nil
}
