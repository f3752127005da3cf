package driver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// ConditionalWrites says how far the driver relies on the bucket to
// enforce write conditions (If-Match, If-None-Match): the fence that turns
// a second writer into snapshot.ErrConflict instead of a silent overwrite.
// Some S3-compatible servers ignore them (s3rver does); the README lists
// what a server must support and the servers tried.
type ConditionalWrites int

const (
	// ConditionsAuto probes (see ConditionsProbe) an s3:// bucket whose
	// endpoint is not known to enforce conditions, once per database
	// before its first upload. AWS S3 (no endpoint, and no
	// AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 in the environment, or an
	// amazonaws.com endpoint) and Cloudflare R2 are not probed, nor are
	// directory and memory buckets and buckets given with WithBucket,
	// whose Bucket contract includes the conditions. The default.
	ConditionsAuto ConditionalWrites = iota
	// ConditionsProbe always probes, whatever the bucket, with
	// snapshot.ProbeConditions on KEY.probe (1 HEAD, 3 PUTs, 1 DELETE).
	// A bucket that ignores conditions fails every flush with an error
	// matching snapshot.ErrConditionsIgnored; nothing is uploaded.
	ConditionsProbe
	// ConditionsTrust never probes: you vouch for the server.
	ConditionsTrust
	// ConditionsOff flushes even to a server that ignores conditions,
	// without probing: a second writer on the key then overwrites the
	// first without an error. Only for a server known to ignore them,
	// with one writer guaranteed some other way.
	ConditionsOff
)

var conditionNames = []string{"auto", "probe", "trust", "off"}

// String returns the DSN spelling of c.
func (c ConditionalWrites) String() string {
	if c < 0 || int(c) >= len(conditionNames) {
		return fmt.Sprintf("ConditionalWrites(%d)", int(c))
	}
	return conditionNames[c]
}

func parseConditionalWrites(s string) (ConditionalWrites, error) {
	for i, n := range conditionNames {
		if strings.EqualFold(s, n) {
			return ConditionalWrites(i), nil
		}
	}
	return 0, fmt.Errorf("want auto, probe, trust or off, got %q", s)
}

// mustProbe reports whether cfg's bucket is to be probed before the first
// upload; custom reports a bucket given with WithBucket.
func mustProbe(cfg *Config, custom bool) bool {
	switch cfg.ConditionalWrites {
	case ConditionsProbe:
		return true
	case ConditionsAuto:
		return !custom && cfg.Bucket.Scheme == "s3" && !knownToEnforce(cfg.Bucket.Endpoint)
	}
	return false
}

// knownToEnforce reports whether the S3 endpoint is one known to enforce
// write conditions: AWS S3 and Cloudflare R2.
func knownToEnforce(endpoint string) bool {
	if endpoint == "" {
		// AWS, unless the environment points the SDK elsewhere.
		return os.Getenv("AWS_ENDPOINT_URL_S3") == "" && os.Getenv("AWS_ENDPOINT_URL") == ""
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	return strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".r2.cloudflarestorage.com")
}

// prober runs snapshot.ProbeConditions once, before the first upload.
type prober struct {
	b    bucket.Bucket
	key  string
	done bool
	err  error // sticky once the bucket is found to ignore conditions
}

// check probes unless that was done; a probe that failed for another
// reason (the network) is tried again by the next flush.
func (p *prober) check(ctx context.Context) error {
	if p == nil || p.done {
		return p.errOrNil()
	}
	err := snapshot.ProbeConditions(ctx, p.b, p.key)
	if isIgnored(err) {
		// Ask again before refusing every flush for good: a request of a
		// killed process landing late (a DELETE of KEY.probe) could make
		// one refusal look missing.
		err = snapshot.ProbeConditions(ctx, p.b, p.key)
	}
	switch {
	case err == nil:
		p.done = true
	case isIgnored(err):
		p.done, p.err = true, err
	}
	return err
}

func isIgnored(err error) bool { return errors.Is(err, snapshot.ErrConditionsIgnored) }

func (p *prober) errOrNil() error {
	if p == nil {
		return nil
	}
	return p.err
}
