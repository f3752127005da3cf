package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Transfers over progressMin draw a bar with the bytes, their rate and
// the time left; smaller ones and deltas draw nothing; an upload's source
// keeps its known SHA-256.
func TestProgressBucket(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	p := &progressBucket{Bucket: bucket.NewMemory(), w: &out}
	big := bytes.Repeat([]byte("x"), progressMin+1)
	if _, err := p.Upload(ctx, "small.db", bytes.NewReader(big[:1000]), 1000, bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("a small upload drew %q", out.String())
	}
	if _, err := p.Upload(ctx, "big.db", bytes.NewReader(big), int64(len(big)), bucket.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "upload big.db") || !strings.Contains(s, "/4.0 MiB") {
		t.Fatalf("upload drew %q", s)
	}
	out.Reset()
	var w memWriterAt
	if _, err := p.Download(ctx, "big.db", &w); err != nil || !bytes.Equal(w.buf, big) {
		t.Fatalf("download: %v", err)
	}
	if s := out.String(); !strings.Contains(s, "download big.db") {
		t.Fatalf("download drew %q", s)
	}
	if terminal(&out) != nil {
		t.Fatal("a buffer taken for a terminal")
	}
	var src any = &hashedCounting{}
	if _, ok := src.(bucket.SHA256Source); !ok {
		t.Fatal("the counting source hides the SHA-256")
	}
}
