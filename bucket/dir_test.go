package bucket_test

import (
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/bucket/buckettest"
)

func TestDirConformance(t *testing.T) {
	buckettest.Run(t, buckettest.Harness{
		New: func(t *testing.T) bucket.Bucket {
			d, err := bucket.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	})
}
