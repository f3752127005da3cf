package driver

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// FormatDSN returns a DSN that ParseDSN turns back into cfg: the
// location, the key, and the parameters that differ from their defaults,
// sorted, query-encoded ('+' as %2B). Without a bucket (WithBucket) it
// starts with the key, and is for messages only.
func (cfg *Config) FormatDSN() string {
	q := url.Values{}
	var b strings.Builder
	if cfg.Bucket != (bucket.URL{}) {
		loc, rawQuery, _ := strings.Cut(cfg.Bucket.String(), "?")
		q, _ = url.ParseQuery(rawQuery) // String encodes it
		b.WriteString(loc)
		if !strings.HasSuffix(loc, "/") {
			b.WriteByte('/')
		}
	}
	b.WriteString((&url.URL{Path: cfg.Key}).EscapedPath())
	if cfg.FlushInterval != cfg.Sync.defaultFlushInterval() {
		q.Set("flush_interval", cfg.FlushInterval.String())
	}
	if cfg.FlushTimeout != DefaultFlushTimeout {
		q.Set("flush_timeout", cfg.FlushTimeout.String())
	}
	if cfg.KeepPrevious != DefaultKeepPrevious {
		q.Set("keep_previous", strconv.FormatBool(cfg.KeepPrevious))
	}
	if cfg.Local != "" {
		q.Set("local", cfg.Local)
	}
	if cfg.Sync != SyncFull {
		q.Set("sync", cfg.Sync.String())
	}
	if cfg.Retention != 0 {
		q.Set("retention", cfg.Retention.String())
	}
	if cfg.ConditionalWrites != ConditionsAuto {
		q.Set("conditional_writes", cfg.ConditionalWrites.String())
	}
	if cfg.Replica {
		q.Set("replica", "true")
	}
	if cfg.RefreshInterval != DefaultRefreshInterval {
		q.Set("refresh_interval", cfg.RefreshInterval.String())
	}
	if cfg.Check != snapshot.CheckFull {
		q.Set("integrity_check", cfg.Check.String())
	}
	for k, v := range cfg.SQLite {
		q[k] = v
	}
	for _, p := range cfg.Pragmas {
		name, value, _ := strings.Cut(p, "=")
		q.Add("_pragma", name+"("+value+")")
	}
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(encodeQuery(q))
	}
	return b.String()
}

// readable undoes the escaping of characters that are legal in a query
// value (RFC 3986), so that endpoints and paths stay legible in logs.
var readable = strings.NewReplacer("%2F", "/", "%3A", ":", "%40", "@", "%2C", ",")

// encodeQuery is url.Values.Encode (sorted by key) with legible values.
func encodeQuery(q url.Values) string {
	keys := slices.Sorted(maps.Keys(q))
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(readable.Replace(url.QueryEscape(v)))
		}
	}
	return b.String()
}

// String is FormatDSN: a Config holds no secrets, so it is safe to log.
func (cfg *Config) String() string { return cfg.FormatDSN() }

// Clone returns a deep copy of cfg.
func (cfg *Config) Clone() *Config {
	c := *cfg
	if cfg.SQLite != nil {
		c.SQLite = url.Values{}
		for k, v := range cfg.SQLite {
			c.SQLite[k] = slices.Clone(v)
		}
	}
	c.Pragmas = slices.Clone(cfg.Pragmas)
	return &c
}
