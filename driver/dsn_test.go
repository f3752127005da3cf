package driver

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

func s3URL(name string) bucket.URL      { return bucket.URL{Scheme: "s3", Bucket: name} }
func fileURL(dir string) bucket.URL     { return bucket.URL{Scheme: "file", Dir: dir} }
func memURL(name string) bucket.URL     { return bucket.URL{Scheme: "mem", Bucket: name} }
func withCfg(f func(c *Config)) *Config { c := NewConfig(); f(c); return c }

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want *Config
	}{
		{"s3://my-bucket/app.db", withCfg(func(c *Config) { c.Bucket, c.Key = s3URL("my-bucket"), "app.db" })},
		{"s3://my-bucket/apps/todo.db?region=auto&endpoint=https://acct.r2.cloudflarestorage.com&flush_interval=1m",
			withCfg(func(c *Config) {
				c.Bucket = bucket.URL{Scheme: "s3", Bucket: "my-bucket", Region: "auto", Endpoint: "https://acct.r2.cloudflarestorage.com"}
				c.Key = "apps/todo.db"
			})},
		{"s3://b/k.db?path_style=true&profile=dev&keep_previous=false&flush_interval=0&flush_timeout=30s&integrity_check=quick&local=/var/lib/app/k.db",
			withCfg(func(c *Config) {
				c.Bucket = bucket.URL{Scheme: "s3", Bucket: "b", PathStyle: true, Profile: "dev"}
				c.Key, c.KeepPrevious = "k.db", false
				c.FlushInterval, c.FlushTimeout, c.Check, c.Local = 0, 30*time.Second, snapshot.CheckQuick, "/var/lib/app/k.db"
			})},
		// One boolean grammar: what go-sqlite3 takes, in any case.
		{"s3://b/k.db?path_style=yes&keep_previous=OFF", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.KeepPrevious = bucket.URL{Scheme: "s3", Bucket: "b", PathStyle: true}, "k.db", false
		})},
		{"s3://b/k.db?path_style=On&keep_previous=No", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.KeepPrevious = bucket.URL{Scheme: "s3", Bucket: "b", PathStyle: true}, "k.db", false
		})},
		{"S3://b/k.db?path_style=0", withCfg(func(c *Config) { c.Bucket, c.Key = s3URL("b"), "k.db" })},
		{"file:///var/data/app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/var/data"), "app.db" })},
		{"file:///var/data//app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/var/data"), "app.db" })},
		{"file://localhost/var/data/app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/var/data"), "app.db" })},
		{"file:/var/data/app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/var/data"), "app.db" })},
		{"file:///app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/"), "app.db" })},
		{"file:data/app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("data"), "app.db" })},
		{"file:data/x/app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("data/x"), "app.db" })},
		{"file:app.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("."), "app.db" })},
		{"file:./a/../b/c.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("./a/../b"), "c.db" })},
		{"file:///my%20dir/a%3Fb.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/my dir"), "a?b.db" })},
		{"file:///a/b%2Fc.db", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/a/b"), "c.db" })},
		{"mem://test/x/y.db", withCfg(func(c *Config) { c.Bucket, c.Key = memURL("test"), "x/y.db" })},
		{"mem://t/k?sync=log&retention=72h", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.Sync, c.FlushInterval, c.Retention = memURL("t"), "k", SyncLog, DefaultLogFlushInterval, 72*time.Hour
		})},
		{"mem://t/k?_journal_mode=delete&_fk=yes&_busy_timeout=100&_txlock=IMMEDIATE&_secure_delete=fast&_query_only=OFF",
			withCfg(func(c *Config) {
				c.Bucket, c.Key = memURL("t"), "k"
				c.SQLite = url.Values{"_journal_mode": {"DELETE"}, "_foreign_keys": {"1"}, "_busy_timeout": {"100"},
					"_txlock": {"immediate"}, "_secure_delete": {"FAST"}, "_query_only": {"0"}}
			})},
		// sync=log flushes every second unless told otherwise.
		{"s3://b/k.db?sync=log", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.Sync, c.FlushInterval = s3URL("b"), "k.db", SyncLog, DefaultLogFlushInterval
		})},
		{"s3://b/k.db?sync=log&flush_interval=1m", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.Sync, c.FlushInterval = s3URL("b"), "k.db", SyncLog, time.Minute
		})},
		{"s3://b/k.db?flush_interval=1s", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.FlushInterval = s3URL("b"), "k.db", time.Second
		})},
		// Query values are query-encoded: '+' is a space, %2B a plus.
		{"s3://b/k.db?local=/var/lib/app%2B1.db", withCfg(func(c *Config) { c.Bucket, c.Key, c.Local = s3URL("b"), "k.db", "/var/lib/app+1.db" })},
		{"s3://b/k.db?local=/var/lib/app+1.db", withCfg(func(c *Config) { c.Bucket, c.Key, c.Local = s3URL("b"), "k.db", "/var/lib/app 1.db" })},
	}
	for _, tt := range tests {
		got, err := ParseDSN(tt.dsn)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tt.dsn, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDSN(%q)\n got %+v\nwant %+v", tt.dsn, got, tt.want)
		}
		again, err := ParseDSN(got.FormatDSN())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q via %q: %+v, %v", tt.dsn, got.FormatDSN(), again, err)
		}
	}
}

func TestFormatDSN(t *testing.T) {
	tests := []struct {
		cfg  *Config
		want string
	}{
		{withCfg(func(c *Config) { c.Bucket, c.Key = s3URL("b"), "k.db" }), "s3://b/k.db"},
		{withCfg(func(c *Config) {
			c.Bucket = bucket.URL{Scheme: "s3", Bucket: "b", Endpoint: "http://127.0.0.1:9000", Region: "auto", PathStyle: true, Profile: "dev"}
			c.Key, c.FlushInterval = "apps/todo.db", 30*time.Second
		}), "s3://b/apps/todo.db?endpoint=http://127.0.0.1:9000&flush_interval=30s&path_style=true&profile=dev&region=auto"},
		{withCfg(func(c *Config) { c.Bucket, c.Key, c.Local = s3URL("b"), "k.db", "/var/lib/app+1.db" }), "s3://b/k.db?local=/var/lib/app%2B1.db"},
		{withCfg(func(c *Config) { c.Bucket, c.Key, c.Local = s3URL("b"), "k.db", "/a b&c=%.db" }), "s3://b/k.db?local=/a+b%26c%3D%25.db"},
		{withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("data"), "app.db" }), "file:data/app.db"},
		{withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/"), "app.db" }), "file:///app.db"},
		{withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/my dir"), "a?b#c.db" }), "file:///my%20dir/a%3Fb%23c.db"},
		{withCfg(func(c *Config) { c.Key, c.KeepPrevious = "k.db", false }), "k.db?keep_previous=false"},
		{withCfg(func(c *Config) { c.Bucket, c.Key, c.Sync = s3URL("b"), "k.db", SyncLog }), "s3://b/k.db?flush_interval=1m0s&sync=log"},
		{withCfg(func(c *Config) {
			c.Bucket, c.Key, c.Sync, c.FlushInterval = s3URL("b"), "k.db", SyncLog, DefaultLogFlushInterval
		}), "s3://b/k.db?sync=log"},
		{withCfg(func(c *Config) {
			c.Bucket, c.Key, c.Sync, c.FlushInterval, c.Retention = s3URL("b"), "k.db", SyncLog, DefaultLogFlushInterval, 90*time.Minute
		}), "s3://b/k.db?retention=1h30m0s&sync=log"},
	}
	for _, tt := range tests {
		if got := tt.cfg.FormatDSN(); got != tt.want {
			t.Errorf("FormatDSN() = %q; want %q", got, tt.want)
		}
		if tt.cfg.Bucket == (bucket.URL{}) {
			continue
		}
		again, err := ParseDSN(tt.cfg.FormatDSN())
		if err != nil || !reflect.DeepEqual(again, tt.cfg) {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v", tt.cfg.FormatDSN(), again, err, tt.cfg)
		}
	}
}

func TestParseDSNErrors(t *testing.T) {
	tests := []struct {
		dsn, param string
	}{
		{"", "scheme"},
		{"app.db", "scheme"},
		{"/var/data/app.db", "scheme"},
		{"//host/app.db", "scheme"},
		{"http://bucket/app.db", "scheme"},
		{"postgres://u@h/db", "dsn"},
		{"s3://", "bucket"},
		{"s3:///app.db", "bucket"},
		{"s3:bucket/app.db", "bucket"},
		{"mem:name/app.db", "bucket"},
		{"s3://my_bucket!/app.db", "bucket"},
		{"s3://bucket:9000/app.db", "bucket"},
		{"s3://[::1]/app.db", "bucket"},
		{"s3://" + strings.Repeat("b", 256) + "/app.db", "bucket"},
		{"s3://bucket", "key"},
		{"s3://b/k.db?sync=log&retention=3d", "retention"},
		{"s3://b/k.db?sync=log&retention=-1h", "retention"},
		{"s3://b/k.db?retention=1h", "retention"}, // needs sync=log
		{"s3://bucket/", "key"},
		{"s3://bucket//b.db", "key"},
		{"s3://bucket/a//b.db", "key"},
		{"s3://bucket/../b.db", "key"},
		{"s3://bucket/a/./b.db", "key"},
		{"s3://bucket/a%5Cb.db", "key"},
		{"s3://bucket/a%01b.db", "key"},
		{"s3://bucket/" + strings.Repeat("k", bucket.MaxKeyLen+1), "key"},
		{"s3://bucket/app.db?flush_intervall=1m", "flush_intervall"},
		{"s3://bucket/app.db?flush_interval=soon", "flush_interval"},
		{"s3://bucket/app.db?flush_interval=-1s", "flush_interval"},
		{"s3://bucket/app.db?flush_interval=1m&flush_interval=2m", "flush_interval"},
		{"s3://bucket/app.db?flush_timeout=x", "flush_timeout"},
		{"s3://bucket/app.db?flush_timeout=-1s", "flush_timeout"},
		{"s3://bucket/app.db?keep_previous=maybe", "keep_previous"},
		{"s3://bucket/app.db?keep_previous=t", "keep_previous"},
		{"s3://bucket/app.db?keep_previous=", "keep_previous"},
		{"s3://bucket/app.db?path_style=yesplease", "path_style"},
		{"s3://bucket/app.db?path_style=t", "path_style"},
		{"s3://bucket/app.db?path_style=", "path_style"},
		{"s3://bucket/app.db?path_style=1&path_style=0", "path_style"},
		{"s3://bucket/app.db?integrity_check=some", "integrity_check"},
		{"s3://bucket/app.db?endpoint=localhost:9000", "endpoint"},
		{"s3://bucket/app.db?endpoint=ftp://x", "endpoint"},
		{"s3://bucket/app.db?endpoint=", "endpoint"},
		{"s3://bucket/app.db?region=", "region"},
		{"s3://bucket/app.db?region=a%0Ab", "region"},
		{"s3://bucket/app.db?profile=", "profile"},
		{"s3://bucket/app.db?Region=auto", "Region"},
		{"s3://bucket/app.db?local=", "local"},
		{"s3://bucket/app.db?access_key=AKIA", "access_key"},
		{"s3://bucket/app.db?_journal_mode=bogus", "_journal_mode"},
		{"s3://bucket/app.db?_journal_mode=WAL&_journal=WAL", "_journal_mode"},
		{"s3://bucket/app.db?_busy_timeout=-5", "_busy_timeout"},
		{"s3://bucket/app.db?_busy_timeout=abc", "_busy_timeout"},
		{"s3://bucket/app.db?_locking_mode=EXCLUSIVE", "_locking_mode"},
		{"s3://bucket/app.db?_foreign_keys=2", "_foreign_keys"},
		{"s3://bucket/app.db?_fk=t", "_fk"},
		{"s3://bucket/app.db?_secure_delete=sometimes", "_secure_delete"},
		{"s3://bucket/app.db?_unknown=1", "_unknown"},
		{"s3://bucket/app.db?_auth_pass=x", "_auth_pass"},
		{"s3://bucket/app.db?mode=memory", "mode"},
		{"s3://bucket/app.db?cache=shared", "cache"},
		{"s3://bucket/app.db?=x", "query"},
		{"s3://bucket/app.db?%zz", "query"},
		{"s3://bucket/app.db?a=1;b=2", "query"},
		{"file:///data/app.db?endpoint=http://x", "endpoint"},
		{"file:data/app.db?path_style=true", "path_style"},
		{"mem://t/app.db?region=auto", "region"},
		{"file://otherhost/data/app.db", "bucket"},
		{"file://", "bucket"},
		{"file:", "bucket"},
		{"file:///data/", "key"},
		{"file:data/", "key"},
		{"file:///data/..", "key"},
		{"file:///data/%01/app.db", "bucket"},
		{"file:da%01ta/app.db", "bucket"},
		{"file:a%zz/app.db", "bucket"},
		{"mem://t/k#frag", "dsn"},
		{"mem://t/k#", "dsn"},
		{"s3://b/%zz", "dsn"},
	}
	for _, tt := range tests {
		_, err := ParseDSN(tt.dsn)
		var de *DSNError
		if !errors.As(err, &de) || !errors.Is(err, ErrInvalidDSN) {
			t.Errorf("ParseDSN(%q) = %v; want a *DSNError", tt.dsn, err)
			continue
		}
		if de.Param != tt.param {
			t.Errorf("ParseDSN(%q) blames %q, want %q: %v", tt.dsn, de.Param, tt.param, err)
		}
		if !strings.Contains(err.Error(), tt.param) && !(tt.param == "dsn" && strings.Contains(err.Error(), "DSN")) {
			t.Errorf("ParseDSN(%q): message %q does not name %q", tt.dsn, err, tt.param)
		}
		checkOnce(t, err)
	}
}

// checkOnce fails when an error message says a thing twice, as in
// "invalid DSN: bucket: bucket: invalid bucket URL".
func checkOnce(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, w := range []string{"invalid DSN", "invalid bucket URL", "bucketsqlite:"} {
		if strings.Count(msg, w) > 1 {
			t.Errorf("error %q says %q more than once", msg, w)
		}
	}
	for _, w := range []string{"bucket: bucket", "key: invalid key", "invalid DSN: dsn", "url: url"} {
		if strings.Contains(msg, w) {
			t.Errorf("error %q stutters: %q", msg, w)
		}
	}
}

func TestParseDSNMessages(t *testing.T) {
	for dsn, want := range map[string]string{
		"s3://b/k.db?flush_timeout=-1s":    "bucketsqlite: invalid DSN: flush_timeout: negative (-1s)",
		"s3://b/k.db?path_style=maybe":     `bucketsqlite: invalid DSN: path_style: "maybe" is not a boolean (want true|false|1|0|yes|no|on|off)`,
		"s3://my_bucket!/k.db":             `bucketsqlite: invalid DSN: bucket: "my_bucket!": only letters, digits, '.', '-' and '_' are allowed`,
		"s3://b/a//k.db":                   `bucketsqlite: invalid DSN: key: "a//k.db": has an empty path segment`,
		"ftp://b/k.db":                     `bucketsqlite: invalid DSN: scheme: "ftp" is not supported: want s3, file or mem`,
		"mem://t/k.db?endpoint=http://h:1": "bucketsqlite: invalid DSN: endpoint: only s3:// URLs take it",
	} {
		_, err := ParseDSN(dsn)
		if err == nil || err.Error() != want {
			t.Errorf("ParseDSN(%q): %v\nwant %s", dsn, err, want)
		}
	}
}

// A Config built by hand is checked exactly like a parsed one: the same
// errors, naming the same fields, and the same one spelling of a location.
func TestConfigNormalize(t *testing.T) {
	bad := []struct {
		name  string
		cfg   *Config
		param string
	}{
		{"no key", withCfg(func(c *Config) { c.Bucket = s3URL("b") }), "key"},
		{"bad key", withCfg(func(c *Config) { c.Bucket, c.Key = s3URL("b"), "a/../b" }), "key"},
		{"no scheme", withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Bucket: "b"}, "k" }), "scheme"},
		{"bad scheme", withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Scheme: "gs", Bucket: "b"}, "k" }), "scheme"},
		{"bad name", withCfg(func(c *Config) { c.Bucket, c.Key = s3URL("my_bucket!"), "k" }), "bucket"},
		{"no name", withCfg(func(c *Config) { c.Bucket, c.Key = s3URL(""), "k" }), "bucket"},
		{"no dir", withCfg(func(c *Config) { c.Bucket, c.Key = fileURL(""), "k" }), "bucket"},
		{"bad prefix", withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Scheme: "mem", Bucket: "m", Prefix: "../"}, "k" }), "bucket"},
		{"bad endpoint", withCfg(func(c *Config) {
			c.Bucket, c.Key = bucket.URL{Scheme: "s3", Bucket: "b", Endpoint: "localhost:9000"}, "k"
		}), "endpoint"},
		{"region on mem", withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Scheme: "mem", Bucket: "m", Region: "x"}, "k" }), "region"},
		{"path_style on file", withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Scheme: "file", Dir: "/d", PathStyle: true}, "k" }), "path_style"},
		{"negative interval", withCfg(func(c *Config) { c.Bucket, c.Key, c.FlushInterval = s3URL("b"), "k", -time.Second }), "flush_interval"},
		{"negative timeout", withCfg(func(c *Config) { c.Bucket, c.Key, c.FlushTimeout = s3URL("b"), "k", -time.Second }), "flush_timeout"},
		{"bad check", withCfg(func(c *Config) { c.Bucket, c.Key, c.Check = s3URL("b"), "k", snapshot.Check(9) }), "integrity_check"},
		{"alias", withCfg(func(c *Config) { c.Bucket, c.Key, c.SQLite = s3URL("b"), "k", url.Values{"_fk": {"1"}} }), "_fk"},
		{"not canonical", withCfg(func(c *Config) { c.Bucket, c.Key, c.SQLite = s3URL("b"), "k", url.Values{"_foreign_keys": {"yes"}} }), "_foreign_keys"},
		{"two values", withCfg(func(c *Config) {
			c.Bucket, c.Key, c.SQLite = s3URL("b"), "k", url.Values{"_busy_timeout": {"1", "2"}}
		}), "_busy_timeout"},
		{"prefix makes key too long", withCfg(func(c *Config) {
			c.Bucket = bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "p/"}
			c.Key = strings.Repeat("k", bucket.MaxKeyLen-1)
		}), "key"},
	}
	for _, tt := range bad {
		err := tt.cfg.Clone().normalize()
		var de *DSNError
		if !errors.As(err, &de) || de.Param != tt.param {
			t.Errorf("%s: normalize() = %v; want a *DSNError on %q", tt.name, err, tt.param)
			continue
		}
		checkOnce(t, err)
	}

	good := []struct {
		cfg, want *Config
	}{
		{withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Scheme: "s3", Bucket: "b", Prefix: "db/prod/"}, "app.db" }),
			withCfg(func(c *Config) { c.Bucket, c.Key = s3URL("b"), "db/prod/app.db" })},
		{withCfg(func(c *Config) { c.Bucket, c.Key = bucket.URL{Scheme: "mem", Bucket: "m", Prefix: "p"}, "app.db" }),
			withCfg(func(c *Config) { c.Bucket, c.Key = memURL("m"), "p/app.db" })},
		{withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/var/lib/"), "apps/todo.db" }),
			withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/var/lib/apps"), "todo.db" })},
		{withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/"), "a/b/c.db" }),
			withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("/a/b"), "c.db" })},
		{withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("data"), "x/c.db" }),
			withCfg(func(c *Config) { c.Bucket, c.Key = fileURL("data/x"), "c.db" })},
		{withCfg(func(c *Config) { c.Key = "apps/todo.db" }), withCfg(func(c *Config) { c.Key = "apps/todo.db" })},
	}
	for _, tt := range good {
		got := tt.cfg.Clone()
		if err := got.normalize(); err != nil {
			t.Errorf("normalize(%v): %v", tt.cfg, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("normalize(%v)\n got %+v\nwant %+v", tt.cfg, got, tt.want)
		}
		if got.Bucket == (bucket.URL{}) {
			continue
		}
		// A hand-built Config formats into the DSN that parses back to it.
		parsed, err := ParseDSN(tt.cfg.FormatDSN())
		if err != nil || !reflect.DeepEqual(parsed, got) {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v", tt.cfg.FormatDSN(), parsed, err, got)
		}
	}
}

// Credentials never reach an error message.
func TestParseDSNRedactsCredentials(t *testing.T) {
	for _, dsn := range []string{
		"s3://AKIAEXAMPLE:s3cr3tvalue@bucket/app.db",
		"s3://AKIAEXAMPLE@bucket/app.db?region=s3cr3tvalue%0A",
		"file://AKIAEXAMPLE:s3cr3tvalue@/data/app.db",
		"s3://bucket/app.db?endpoint=https://AKIAEXAMPLE:s3cr3tvalue@host",
		"s3://bucket/app.db?endpoint=https://host/s3cr3tvalue%zz",
		"s3://bucket/app.db?secret_key=s3cr3tvalue",
		"s3://bucket/app.db?_auth_pass=s3cr3tvalue",
		"s3://AKIAEXAMPLE:s3cr3tvalue@bucket/%zz",
	} {
		_, err := ParseDSN(dsn)
		if err == nil {
			t.Errorf("ParseDSN(%q) accepted credentials", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3tvalue") {
			t.Errorf("ParseDSN(%q): error leaks the secret: %v", dsn, err)
		}
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"s3://my-bucket/apps/todo.db?region=auto&endpoint=https://x.r2.cloudflarestorage.com&flush_interval=1m",
		"file:///var/data/app.db?local=/tmp/x.db&keep_previous=false",
		"file:data/app.db?_journal_mode=DELETE&_fk=true",
		"mem://t/k?integrity_check=none&flush_timeout=0",
		"s3://b/a%20b.db?path_style=1&profile=p",
		"s3://b/k.db?path_style=yes&keep_previous=OFF&local=/var/lib/app%2B1.db",
		"file:app.db",
		"file://localhost/a//b.db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		cfg, err := ParseDSN(dsn)
		if err != nil {
			var de *DSNError
			if !errors.As(err, &de) || de.Param == "" {
				t.Fatalf("ParseDSN(%q): error %v does not name a parameter", dsn, err)
			}
			return
		}
		out := cfg.FormatDSN()
		again, err := ParseDSN(out)
		if err != nil {
			t.Fatalf("ParseDSN(%q) ok, but its FormatDSN %q fails: %v", dsn, out, err)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("round trip %q -> %q:\n%+v\n%+v", dsn, out, cfg, again)
		}
		if again.FormatDSN() != out {
			t.Fatalf("FormatDSN is not stable: %q, then %q", out, again.FormatDSN())
		}
	})
}
