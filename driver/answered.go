package driver

import (
	"context"
	"errors"
	"fmt"

	"github.com/buckethead/bucketsqlite/bucket"
)

// errNoETag is a Stat that answered with no ETag.
var errNoETag = errors.New("the bucket's answer has no ETag")

// answered is the database's bucket, with a Stat that answers without an
// ETag taken for the failure it is: no store holds an object without one,
// so such an answer (a gateway that lied, a truncated response) says
// nothing about the object. Decisions that an object is another writer's,
// a foreign one or a changed one rest on what a real answer holds, and a
// flush or restore that met such an answer fails, to be tried again,
// rather than report a conflict.
type answered struct{ bucket.Bucket }

// Stat implements bucket.Bucket.
func (a answered) Stat(ctx context.Context, key string) (bucket.Attrs, error) {
	attrs, err := a.Bucket.Stat(ctx, key)
	if err == nil && attrs.ETag == "" {
		return attrs, fmt.Errorf("stat %q: %w", key, errNoETag)
	}
	return attrs, err
}
