// Package buckettest is the conformance suite every bucket.Bucket backend
// must pass. A backend's test file is a tiny harness:
//
//	func TestConformance(t *testing.T) {
//		buckettest.Run(t, buckettest.Harness{
//			New: func(t *testing.T) bucket.Bucket { return bucket.NewMemory() },
//		})
//	}
package buckettest

import (
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// Harness tells the suite how to make a fresh, empty bucket of the backend
// under test and what the backend's transfer thresholds are.
type Harness struct {
	// New returns a new, empty bucket, private to the calling test. It
	// registers any cleanup with t.Cleanup.
	New func(t *testing.T) bucket.Bucket
	// PartSize is the size of one part of a multipart upload, for backends
	// that split large uploads (S3); the suite uploads an object of at
	// least three parts. Zero means the backend has no parts, and the suite
	// uses 3 MiB + 1 byte for that test.
	PartSize int64
}

// Run runs the whole conformance suite against h as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	// Filled in by the suite's implementation.
}
