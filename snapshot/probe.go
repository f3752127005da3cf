package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
)

// ErrConditionsIgnored means the bucket accepted a conditional write that
// it should have refused (ProbeConditions): it does not enforce
// If-None-Match or If-Match, so a flush's conditional write would
// silently overwrite another writer's snapshot. The s3rver test server
// is one such service.
var ErrConditionsIgnored error = &kind{"the bucket ignores write conditions"}

// probeBody is what ProbeConditions writes; the second and third writes
// differ from it, so that an ignored condition shows in the object too.
const probeBody = "bucketsqlite: probe of conditional writes; safe to delete\n"

// ProbeConditions checks that b enforces the write conditions Flush relies
// on, with a throw-away object beside the snapshot at key (KEY.probe,
// ProbeKey): it creates the object, then writes it again with
// If-None-Match (which must fail, since it exists) and with If-Match on a
// wrong ETag (which must fail too), and deletes it. It returns nil when
// both writes were refused, and an error matching ErrConditionsIgnored
// naming the conditions that were ignored otherwise. Any other failure is
// returned as it is: the probe says nothing then, and can be retried.
//
// It costs a Stat, three PUTs and a DELETE. Run it once per bucket and
// database before the first write that depends on conditions; there is no
// need where the service is known to enforce them (AWS S3, R2, MinIO,
// versitygw).
//
// An object already at KEY.probe is deleted first if an earlier probe
// left it (it carries key's hash under MetaKeySHA256); anything else
// there is ErrForeignObject, and left alone.
func ProbeConditions(ctx context.Context, b bucket.Bucket, key string) error {
	if err := ValidateKey(key); err != nil {
		return fail("probe", key, err)
	}
	probe := ProbeKey(key)
	fail := func(err error) error { return fail("probe", key, err) }
	md := map[string]string{MetaKeySHA256: keyHash(key)}
	put := func(body string, opts bucket.WriteOptions) (bucket.Attrs, error) {
		opts.Metadata = md
		return b.Upload(ctx, probe, strings.NewReader(body), int64(len(body)), opts)
	}
	// A probe of a process that was killed can still land after it died
	// (the server finishes a request it fully received): an object of
	// ours in the way is removed and the probe starts again.
	var first bucket.Attrs
	for attempt := 1; ; attempt++ {
		a, err := b.Stat(ctx, probe)
		switch {
		case errors.Is(err, bucket.ErrNotFound):
		case err != nil:
			return fail(err)
		case a.Metadata[MetaKeySHA256] != keyHash(key):
			return &Error{Op: "probe", Key: key, Kind: ErrForeignObject,
				Err: fmt.Errorf("%q holds an object (ETag %s) that no probe of %q wrote: not overwriting it", probe, a.ETag, key)}
		default:
			if err := b.Delete(ctx, probe); err != nil {
				return fail(err)
			}
		}
		first, err = put(probeBody, bucket.WriteOptions{IfNoneMatch: true})
		if err == nil {
			break
		}
		if !errors.Is(err, bucket.ErrPrecondition) || attempt == 3 {
			return fail(fmt.Errorf("create %q: %w", probe, err))
		}
	}
	defer b.Delete(context.WithoutCancel(ctx), probe)

	var ignored []string
	refused := func(what string, opts bucket.WriteOptions) error {
		_, err := put(probeBody+what+"\n", opts)
		switch {
		case err == nil:
			ignored = append(ignored, what)
		case !errors.Is(err, bucket.ErrPrecondition):
			return fail(fmt.Errorf("write %q with %s: %w", probe, what, err))
		}
		return nil
	}
	wrong := `"bucketsqlite-probe-not-an-etag"`
	if first.ETag == wrong {
		wrong = `"bucketsqlite-probe-not-an-etag-either"`
	}
	if err := refused("If-None-Match: * on an existing object", bucket.WriteOptions{IfNoneMatch: true}); err != nil {
		return err
	}
	if err := refused("If-Match with a wrong ETag", bucket.WriteOptions{IfMatch: wrong}); err != nil {
		return err
	}
	if len(ignored) > 0 {
		return &Error{Op: "probe", Key: key, Kind: ErrConditionsIgnored,
			Err: fmt.Errorf("writes to %q succeeded despite %s: conditional writes cannot keep two writers apart "+
				"on this bucket", probe, strings.Join(ignored, " and "))}
	}
	return nil
}
