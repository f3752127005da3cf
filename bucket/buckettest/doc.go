// Package buckettest is the conformance suite every bucket.Bucket backend
// must pass. A backend's test file is a tiny harness:
//
//	func TestConformance(t *testing.T) {
//		buckettest.Run(t, buckettest.Harness{
//			New: func(t *testing.T) bucket.Bucket { return bucket.NewMemory() },
//		})
//	}
package buckettest
