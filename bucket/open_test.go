package bucket_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/bucket"
)

var validURLs = []struct {
	raw  string
	want bucket.URL
	str  string // the canonical form String returns
}{
	{"s3://my-bucket", bucket.URL{Scheme: "s3", Bucket: "my-bucket"}, "s3://my-bucket"},
	{"s3://my-bucket/", bucket.URL{Scheme: "s3", Bucket: "my-bucket"}, "s3://my-bucket"},
	{"S3://My.Bucket_1", bucket.URL{Scheme: "s3", Bucket: "My.Bucket_1"}, "s3://My.Bucket_1"},
	{"s3://b/db/prod", bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "db/prod/"}, "s3://b/db/prod/"},
	{"s3://b/db/prod/", bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "db/prod/"}, "s3://b/db/prod/"},
	{"s3://b/my%20db%3F", bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "my db?/"}, "s3://b/my%20db%3F/"},
	{"s3://b/a%2Fb", bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "a/b/"}, "s3://b/a/b/"},
	{"s3://b?", bucket.URL{Scheme: "s3", Bucket: "b"}, "s3://b"},
	{
		"s3://b/p?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true&profile=dev",
		bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "p/", Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", PathStyle: true, Profile: "dev"},
		"s3://b/p/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true&profile=dev&region=us-east-1",
	},
	{"s3://b?path_style=false", bucket.URL{Scheme: "s3", Bucket: "b"}, "s3://b"},
	{"s3://b?path_style=1", bucket.URL{Scheme: "s3", Bucket: "b", PathStyle: true}, "s3://b?path_style=true"},
	{"s3://b?region=auto&endpoint=https%3A%2F%2Facct.r2.example", bucket.URL{Scheme: "s3", Bucket: "b", Region: "auto", Endpoint: "https://acct.r2.example"},
		"s3://b?endpoint=https%3A%2F%2Facct.r2.example&region=auto"},
	{"file:///tmp/x", bucket.URL{Scheme: "file", Dir: "/tmp/x"}, "file:///tmp/x"},
	{"file://localhost/tmp/x", bucket.URL{Scheme: "file", Dir: "/tmp/x"}, "file:///tmp/x"},
	{"file:///tmp/with%20space/", bucket.URL{Scheme: "file", Dir: "/tmp/with space"}, "file:///tmp/with%20space"},
	{"file:///tmp/x//", bucket.URL{Scheme: "file", Dir: "/tmp/x"}, "file:///tmp/x"},
	{"file:///", bucket.URL{Scheme: "file", Dir: "/"}, "file:///"},
	{"file:////", bucket.URL{Scheme: "file", Dir: "/"}, "file:///"},
	{"file:/tmp/x", bucket.URL{Scheme: "file", Dir: "/tmp/x"}, "file:///tmp/x"},
	{"file:data", bucket.URL{Scheme: "file", Dir: "data"}, "file:data"},
	{"file:data/bucket/", bucket.URL{Scheme: "file", Dir: "data/bucket"}, "file:data/bucket"},
	{"file:.", bucket.URL{Scheme: "file", Dir: "."}, "file:."},
	{"file:./", bucket.URL{Scheme: "file", Dir: "."}, "file:."},
	{"file:../up", bucket.URL{Scheme: "file", Dir: "../up"}, "file:../up"},
	{"file:my%20dir%3F", bucket.URL{Scheme: "file", Dir: "my dir?"}, "file:my%20dir%3F"},
	{"file:a:b", bucket.URL{Scheme: "file", Dir: "a:b"}, "file:a:b"},
	{"file:%2Fabs", bucket.URL{Scheme: "file", Dir: "/abs"}, "file:///abs"},
	{"s3://b?path_style=yes", bucket.URL{Scheme: "s3", Bucket: "b", PathStyle: true}, "s3://b?path_style=true"},
	{"s3://b?path_style=ON", bucket.URL{Scheme: "s3", Bucket: "b", PathStyle: true}, "s3://b?path_style=true"},
	{"s3://b?path_style=No", bucket.URL{Scheme: "s3", Bucket: "b"}, "s3://b"},
	{"mem://test", bucket.URL{Scheme: "mem", Bucket: "test"}, "mem://test"},
	{"mem://test/a/b", bucket.URL{Scheme: "mem", Bucket: "test", Prefix: "a/b/"}, "mem://test/a/b/"},
}

func TestParseURL(t *testing.T) {
	for _, tc := range validURLs {
		u, err := bucket.ParseURL(tc.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
			continue
		}
		if u != tc.want {
			t.Errorf("ParseURL(%q) = %+v; want %+v", tc.raw, u, tc.want)
		}
		if s := u.String(); s != tc.str {
			t.Errorf("ParseURL(%q).String() = %q; want %q", tc.raw, s, tc.str)
		}
		if v, err := bucket.ParseURL(u.String()); err != nil || v != u {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", u.String(), v, err, u)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct {
		raw, param, want string
	}{
		{"", "scheme", "missing"},
		{"bucket/prefix", "scheme", "missing"},
		{"http://b", "scheme", `"http" is not supported`},
		{"gs://b/p", "scheme", `"gs" is not supported`},
		{"s3://", "bucket", "missing"},
		{"s3:///prefix", "bucket", "missing"},
		{"s3:bucket", "bucket", "want s3://NAME"},
		{"mem:name", "bucket", "want mem://NAME"},
		{"s3://AKIAKEY:topsecret@b", "url", "credentials"},
		{"s3://AKIAKEY@b", "url", "credentials"},
		{"s3://AKIAKEY:topsecret@b/%zz", "url", "invalid URL escape"},
		{"mem://user:topsecret@m", "url", "credentials"},
		{"file://user:topsecret@/tmp", "url", "credentials"},
		{"s3://b?endpoint=http://k:topsecret@host", "endpoint", "credentials do not belong in the endpoint"},
		{"s3://b?foo=bar", "foo", "unknown parameter"},
		{"s3://b?secret_access_key=topsecret", "secret_access_key", "unknown parameter"},
		{"s3://b?Region=x", "Region", "unknown parameter"},
		{"s3://b?=x", "query", "without a name"},
		{"s3://b?region=a&region=b", "region", "given 2 times"},
		{"s3://b?region=", "region", "empty"},
		{"s3://b?profile=", "profile", "empty"},
		{"s3://b?path_style=maybe", "path_style", `"maybe" is not a boolean`},
		{"s3://b?path_style=t", "path_style", "not a boolean"},
		{"s3://b?path_style=F", "path_style", "not a boolean"},
		{"s3://b?path_style=2", "path_style", "not a boolean"},
		{"s3://b?path_style=", "path_style", "empty"},
		{"s3://b?endpoint=ftp://h", "endpoint", "want http://HOST"},
		{"s3://b?endpoint=127.0.0.1:9000", "endpoint", ""},
		{"s3://b?endpoint=http://", "endpoint", "want http://HOST"},
		{"s3://b?endpoint=http://h/%25zz", "endpoint", "not a URL"},
		{"s3://b?region=a%0Ab", "region", "control character"},
		{"s3://b?profile=a%7Fb", "profile", "control character"},
		{"s3://b?x=%zz", "query", "invalid URL escape"},
		{"s3://b?a=1;b=2", "query", "semicolon"},
		{"s3://b//x", "prefix", "empty path segment"},
		{"s3://b//", "prefix", "empty path segment"},
		{"s3://b/a//", "prefix", "empty path segment"},
		{"s3://b/a/../c", "prefix", `".." path segment`},
		{"s3://b/./c", "prefix", `"." path segment`},
		{"s3://b/a%5Cb", "prefix", "backslash"},
		{"s3://b/ctl%01x", "prefix", "control character"},
		{"s3://b/" + strings.Repeat("p", bucket.MaxKeyLen+1), "prefix", "longer than"},
		{"s3://b:9000", "bucket", "only letters"},
		{"s3://my_bucket!", "bucket", "only letters"},
		{"s3://[::1]/p", "bucket", "only letters"},
		{"s3://" + strings.Repeat("b", 256), "bucket", "longer than 255"},
		{"s3://b#frag", "url", "fragment"},
		{"s3://b/a#", "url", "fragment"},
		{"s3://b\x00", "url", "control character"},
		{"s3://b/%zz", "url", "invalid URL escape"},
		{"file://host/tmp", "bucket", "no host"},
		{"file://", "bucket", "missing directory"},
		{"file:", "bucket", "missing directory"},
		{"file://localhost", "bucket", "missing directory"},
		{"file:///tmp?x=1", "x", "unknown parameter"},
		{"file:///tmp?region=x", "region", "only s3:// URLs take it"},
		{"file:data?path_style=true", "path_style", "only s3:// URLs take it"},
		{"file:///tmp/%00", "bucket", "control character"},
		{"file:a%01b", "bucket", "control character"},
		{"file:a%zz", "bucket", "invalid URL escape"},
		{"file:a%2", "bucket", "invalid URL escape"},
		{"mem://", "bucket", "missing"},
		{"mem://n?endpoint=http://h", "endpoint", "only s3:// URLs take it"},
		{"mem://a:1", "bucket", "only letters"},
		{"mem://n//p", "prefix", "empty path segment"},
	} {
		u, err := bucket.ParseURL(tc.raw)
		if err == nil {
			t.Errorf("ParseURL(%q) = %+v; want an error", tc.raw, u)
			continue
		}
		if !errors.Is(err, bucket.ErrInvalidURL) {
			t.Errorf("ParseURL(%q): %v does not match ErrInvalidURL", tc.raw, err)
		}
		var ue *bucket.URLError
		if !errors.As(err, &ue) {
			t.Errorf("ParseURL(%q): %v is not a *URLError", tc.raw, err)
		} else if ue.Param != tc.param {
			t.Errorf("ParseURL(%q): %v blames %q; want %q", tc.raw, err, ue.Param, tc.param)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q): %q; want it to say %q", tc.raw, err, tc.want)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("ParseURL(%q): %q repeats the secret", tc.raw, err)
		}
		if u != (bucket.URL{}) {
			t.Errorf("ParseURL(%q) returned %+v with its error", tc.raw, u)
		}
	}
}

// An error says each thing once.
func TestURLErrorMessage(t *testing.T) {
	_, err := bucket.ParseURL("s3://b?path_style=maybe")
	const want = `invalid bucket URL: path_style: "maybe" is not a boolean (want true|false|1|0|yes|no|on|off)`
	if err == nil || err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	name := t.Name()
	t.Cleanup(func() { bucket.ForgetMem(name) })
	b, err := bucket.Open(ctx, "mem://"+name+"/pre")
	if err != nil {
		t.Fatal(err)
	}
	put(t, b, "k", "v", nil)
	if _, err := bucket.Mem(name).Stat(ctx, "pre/k"); err != nil {
		t.Errorf("object uploaded through mem://%s/pre is not at pre/k in Mem(%q): %v", name, name, err)
	}

	dir := t.TempDir()
	b, err = bucket.Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := b.(*bucket.Dir); !ok || !sameDir(t, d.Root(), dir) {
		t.Errorf("Open(file://%s) = %#v; want a *Dir on it", dir, b)
	}

	// A relative directory is resolved against the working directory.
	t.Chdir(dir)
	b, err = bucket.Open(ctx, "file:rel/sub")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := b.(*bucket.Dir); !ok || !sameDir(t, d.Root(), filepath.Join(dir, "rel", "sub")) {
		t.Errorf("Open(file:rel/sub) = %#v; want a *Dir on rel/sub in %s", b, dir)
	}

	if _, err := bucket.Open(ctx, "ftp://x"); !errors.Is(err, bucket.ErrInvalidURL) {
		t.Errorf("Open of an unknown scheme: %v", err)
	}

	b, err = bucket.Open(ctx, "s3://some-bucket/pre?endpoint=http://127.0.0.1:1&region=test&path_style=true")
	if err != nil || b == nil {
		t.Errorf("Open(s3://...) = %v, %v; want a bucket (NewS3 makes no request)", b, err)
	}
}

func TestURLOpenChecks(t *testing.T) {
	ctx := context.Background()
	name := t.Name()
	t.Cleanup(func() { bucket.ForgetMem(name) })
	// A URL built by hand is checked and normalised as a parsed one.
	b, err := bucket.URL{Scheme: "mem", Bucket: name, Prefix: "p"}.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put(t, b, "k", "v", nil)
	if _, err := bucket.Mem(name).Stat(ctx, "p/k"); err != nil {
		t.Errorf("prefix \"p\" did not become \"p/\": %v", err)
	}
	for _, u := range []bucket.URL{{}, {Scheme: "s3"}, {Scheme: "mem", Bucket: "x", Prefix: "../"}, {Scheme: "file"}} {
		if _, err := u.Open(ctx); !errors.Is(err, bucket.ErrInvalidURL) {
			t.Errorf("%+v.Open(): %v; want ErrInvalidURL", u, err)
		}
	}
}

func TestURLS3Config(t *testing.T) {
	u, err := bucket.ParseURL("s3://b/p?endpoint=http://h:1&region=r&profile=p&path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	c := u.S3Config()
	if c.Bucket != "b" || c.Endpoint != "http://h:1" || c.Region != "r" || c.Profile != "p" || !c.PathStyle {
		t.Errorf("S3Config() = %+v", c)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, tc := range validURLs {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := bucket.ParseURL(raw)
		if err != nil {
			if !errors.Is(err, bucket.ErrInvalidURL) {
				t.Fatalf("ParseURL(%q): %v does not match ErrInvalidURL", raw, err)
			}
			return
		}
		s := u.String()
		v, err := bucket.ParseURL(s)
		if err != nil {
			t.Fatalf("ParseURL(%q) = %+v, whose String %q does not parse: %v", raw, u, s, err)
		}
		if v != u {
			t.Fatalf("ParseURL(%q) = %+v; its String %q parses as %+v", raw, u, s, v)
		}
		if v.String() != s {
			t.Fatalf("String is not stable: %q, then %q", s, v.String())
		}
	})
}
