package driver

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/snapshot"
)

func TestParseDSN(t *testing.T) {
	def := NewConfig()
	with := func(f func(c *Config)) *Config {
		c := def.Clone()
		f(c)
		return c
	}
	tests := []struct {
		dsn  string
		want *Config
	}{
		{"s3://my-bucket/app.db", with(func(c *Config) { c.Bucket, c.Key = "s3://my-bucket", "app.db" })},
		{"s3://my-bucket/apps/todo.db?region=auto&endpoint=https://acct.r2.cloudflarestorage.com&flush_interval=1m",
			with(func(c *Config) {
				c.Bucket, c.Key, c.Region, c.Endpoint = "s3://my-bucket", "apps/todo.db", "auto", "https://acct.r2.cloudflarestorage.com"
			})},
		{"s3://b/k.db?path_style=true&profile=dev&keep_previous=false&flush_interval=0&flush_timeout=30s&integrity_check=quick&local=/var/lib/app/k.db",
			with(func(c *Config) {
				c.Bucket, c.Key, c.PathStyle, c.Profile, c.KeepPrevious = "s3://b", "k.db", true, "dev", false
				c.FlushInterval, c.FlushTimeout, c.Check, c.Local = 0, 30*time.Second, snapshot.CheckQuick, "/var/lib/app/k.db"
			})},
		{"file:///var/data/app.db", with(func(c *Config) { c.Bucket, c.Key = "file:///var/data", "app.db" })},
		{"file:///app.db", with(func(c *Config) { c.Bucket, c.Key = "file:///", "app.db" })},
		{"file:data/app.db", with(func(c *Config) { c.Bucket, c.Key = "file:data", "app.db" })},
		{"file:app.db", with(func(c *Config) { c.Bucket, c.Key = "file:.", "app.db" })},
		{"file:///my%20dir/a%3Fb.db", with(func(c *Config) { c.Bucket, c.Key = "file:///my%20dir", "a?b.db" })},
		{"mem://test/x/y.db", with(func(c *Config) { c.Bucket, c.Key = "mem://test", "x/y.db" })},
		{"mem://t/k?_journal_mode=delete&_fk=1&_busy_timeout=100&_txlock=IMMEDIATE",
			with(func(c *Config) {
				c.Bucket, c.Key = "mem://t", "k"
				c.SQLite = url.Values{"_journal_mode": {"DELETE"}, "_foreign_keys": {"1"}, "_busy_timeout": {"100"}, "_txlock": {"immediate"}}
			})},
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

func TestParseDSNErrors(t *testing.T) {
	tests := []struct {
		dsn, param string
	}{
		{"", "scheme"},
		{"app.db", "scheme"},
		{"/var/data/app.db", "scheme"},
		{"http://bucket/app.db", "scheme"},
		{"postgres://u@h/db", "dsn"},
		{"s3://", "bucket"},
		{"s3:///app.db", "bucket"},
		{"s3://bucket", "key"},
		{"s3://bucket/", "key"},
		{"s3://bucket/a//b.db", "key"},
		{"s3://bucket/../b.db", "key"},
		{"s3://bucket:9000/app.db", "bucket"},
		{"s3://bucket/app.db?flush_intervall=1m", "flush_intervall"},
		{"s3://bucket/app.db?flush_interval=soon", "flush_interval"},
		{"s3://bucket/app.db?flush_interval=-1s", "flush_interval"},
		{"s3://bucket/app.db?flush_interval=1m&flush_interval=2m", "flush_interval"},
		{"s3://bucket/app.db?flush_timeout=x", "flush_timeout"},
		{"s3://bucket/app.db?keep_previous=maybe", "keep_previous"},
		{"s3://bucket/app.db?path_style=yesplease", "path_style"},
		{"s3://bucket/app.db?integrity_check=some", "integrity_check"},
		{"s3://bucket/app.db?endpoint=localhost:9000", "endpoint"},
		{"s3://bucket/app.db?endpoint=ftp://x", "endpoint"},
		{"s3://bucket/app.db?region=", "region"},
		{"s3://bucket/app.db?local=", "local"},
		{"s3://bucket/app.db?access_key=AKIA", "access_key"},
		{"s3://bucket/app.db?_journal_mode=bogus", "_journal_mode"},
		{"s3://bucket/app.db?_journal_mode=WAL&_journal=WAL", "_journal_mode"},
		{"s3://bucket/app.db?_busy_timeout=-5", "_busy_timeout"},
		{"s3://bucket/app.db?_busy_timeout=abc", "_busy_timeout"},
		{"s3://bucket/app.db?_locking_mode=EXCLUSIVE", "_locking_mode"},
		{"s3://bucket/app.db?_foreign_keys=2", "_foreign_keys"},
		{"s3://bucket/app.db?_unknown=1", "_unknown"},
		{"s3://bucket/app.db?_auth_pass=x", "_auth_pass"},
		{"s3://bucket/app.db?mode=memory", "mode"},
		{"s3://bucket/app.db?cache=shared", "cache"},
		{"file:///data/app.db?endpoint=http://x", "endpoint"},
		{"mem://t/app.db?region=auto", "region"},
		{"file://otherhost/data/app.db", "bucket"},
		{"file:///data/", "key"},
		{"mem://t/k#frag", "dsn"},
		{"s3://bucket/app.db?%zz", "query"},
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
		if !strings.Contains(err.Error(), tt.param) {
			t.Errorf("ParseDSN(%q): message %q does not name %q", tt.dsn, err, tt.param)
		}
	}
}

// Credentials never reach an error message.
func TestParseDSNRedactsCredentials(t *testing.T) {
	for _, dsn := range []string{
		"s3://AKIAEXAMPLE:s3cr3tvalue@bucket/app.db",
		"s3://bucket/app.db?endpoint=https://AKIAEXAMPLE:s3cr3tvalue@host",
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
	})
}
