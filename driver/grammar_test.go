package driver

import (
	"net/url"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

// locationSeeds are bucket locations, good and bad, including those on
// which ParseDSN and bucket.ParseURL once disagreed.
var locationSeeds = []string{
	"s3://my-bucket", "s3://b/db/prod", "s3://b/db/prod/", "s3://b/a%2Fb", "s3://b?",
	"s3://b?path_style=yes", "s3://b?path_style=t", "s3://b?path_style=TRUE", "s3://b?path_style=",
	"s3://b?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true&profile=dev",
	"s3://b?endpoint=ftp://h", "s3://b?region=a&region=b", "s3://b?foo=1", "s3://b?=x",
	"s3://my_bucket!", "s3://b:9000", "s3://", "s3:bucket", "s3://u:p@b", "s3://b#f", "s3://b//",
	"s3://b/a/../c", "s3://b/%zz", "S3://B",
	"file:///var/data", "file:///var/data/", "file:///", "file:////srv//x", "file://localhost/x",
	"file://host/x", "file://", "file:", "file:data", "file:data/x", "file:.", "file:./a/../b",
	"file:my%20dir", "file:a%zz", "file:%2Fabs", "file:///x?region=a", "file:///%00",
	"mem://test", "mem://test/a/b", "mem://", "mem:n", "mem://n?region=x",
	"", "x", "http://b", "//b",
}

// dsnFor is the DSN of key app.db at location loc: the key joins the
// location's path, before its query. ok is false when there is no such
// DSN: loc has driver parameters, which a bucket URL does not take, or is
// a file URL without a directory, to which a key would add one ("/").
func dsnFor(loc string) (dsn string, ok bool) {
	i := strings.IndexAny(loc, "?#")
	if i < 0 {
		i = len(loc)
	}
	base, rest := loc[:i], loc[i:]
	if pu, err := url.Parse(base); err == nil && pu.Scheme == "file" && pu.Path == "" && pu.Opaque == "" {
		return "", false
	}
	if q, err := url.ParseQuery(strings.TrimPrefix(rest, "?")); err == nil && strings.HasPrefix(rest, "?") {
		for name := range q {
			if isDriverParam(name) {
				return "", false
			}
		}
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + "app.db" + rest, true
}

// checkSameLocation fails unless ParseDSN and bucket.ParseURL accept the
// same locations, and read them the same.
func checkSameLocation(t *testing.T, loc string) {
	dsn, ok := dsnFor(loc)
	if !ok {
		return
	}
	u, uerr := bucket.ParseURL(loc)
	if uerr == nil && len(u.Prefix+"app.db") > bucket.MaxKeyLen {
		return // the location is fine, the key too long
	}
	cfg, derr := ParseDSN(dsn)
	switch {
	case uerr == nil && derr != nil:
		t.Fatalf("bucket.ParseURL(%q) accepts it; ParseDSN(%q): %v", loc, dsn, derr)
	case uerr != nil && derr == nil:
		t.Fatalf("bucket.ParseURL(%q): %v; ParseDSN(%q) accepts it", loc, uerr, dsn)
	case uerr == nil:
		want := u
		want.Prefix = ""
		if cfg.Bucket != want || cfg.Key != u.Prefix+"app.db" {
			t.Fatalf("ParseDSN(%q) = %+v, %q; bucket.ParseURL(%q) = %+v", dsn, cfg.Bucket, cfg.Key, loc, u)
		}
	}
}

func TestDSNAndURLAgree(t *testing.T) {
	for _, loc := range locationSeeds {
		checkSameLocation(t, loc)
	}
}

// FuzzDSNAndURLAgree feeds one location to both parsers: as a bucket URL
// to bucket.ParseURL, and with a key to ParseDSN. They must accept
// exactly the same ones.
func FuzzDSNAndURLAgree(f *testing.F) {
	for _, loc := range locationSeeds {
		f.Add(loc)
	}
	f.Fuzz(checkSameLocation)
}
