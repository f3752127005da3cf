package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/buckettest"
)

func TestWithPrefixConformance(t *testing.T) {
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket {
			// Objects outside the prefix must stay invisible.
			m := bucket.NewMemory()
			put(t, m, "outside", "x", nil)
			put(t, m, "tenant/a", "x", nil)
			return bucket.WithPrefix(m, "tenant/a/")
		},
	})
}

func TestWithPrefix(t *testing.T) {
	ctx := context.Background()
	m := bucket.NewMemory()
	if bucket.WithPrefix(m, "") != bucket.Bucket(m) {
		t.Error("WithPrefix with an empty prefix did not return the bucket itself")
	}
	p := bucket.WithPrefix(m, "pre/")
	a := put(t, p, "db", "content", map[string]string{"k": "v"})
	if a.Key != "db" {
		t.Errorf("Upload through the prefix returned key %q", a.Key)
	}
	inner, err := m.Stat(ctx, "pre/db")
	if err != nil || inner.ETag != a.ETag {
		t.Fatalf("the inner bucket's pre/db: %+v, %v", inner, err)
	}
	if _, err := p.Copy(ctx, "db", "db2", bucket.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stat(ctx, "pre/db2"); err != nil {
		t.Fatalf("Copy through the prefix: %v", err)
	}
	page, err := p.List(ctx, bucket.ListOptions{Prefix: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 2 || page.Objects[0].Key != "db" || page.Objects[1].Key != "db2" {
		t.Errorf("List through the prefix = %+v", page.Objects)
	}

	// Errors name the caller's key, and still match the sentinels.
	_, err = p.Stat(ctx, "missing")
	var be *bucket.Error
	if !errors.Is(err, bucket.ErrNotFound) || !errors.As(err, &be) || be.Key != "missing" || be.Op != "stat" {
		t.Errorf("Stat(missing) through the prefix: %#v", err)
	}
	_, err = p.Upload(ctx, "db", bytes.NewReader(nil), 0, bucket.WriteOptions{IfNoneMatch: true})
	if !errors.Is(err, bucket.ErrPrecondition) || !errors.As(err, &be) || be.Key != "db" {
		t.Errorf("failed condition through the prefix: %v", err)
	}
	if err != nil && strings.Contains(be.Error(), "pre/") {
		t.Errorf("error %q names the inner key", be.Error())
	}

	// A key that is invalid stays invalid after the prefix makes it look
	// valid ("pre" + "" = "pre"), and one made too long by it is rejected.
	q := bucket.WithPrefix(m, "pre")
	for _, key := range []string{"", strings.Repeat("k", bucket.MaxKeyLen)} {
		_, err := q.Upload(ctx, key, bytes.NewReader(nil), 0, bucket.WriteOptions{})
		if !errors.Is(err, bucket.ErrInvalidKey) || !errors.As(err, &be) || be.Key != key {
			t.Errorf("Upload(%.10q...) through prefix %q: %v; want ErrInvalidKey naming the caller's key", key, "pre", err)
		}
	}
}
