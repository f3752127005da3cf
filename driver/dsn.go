package driver

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buckethead/bucketsqlite/bucket"
	"github.com/buckethead/bucketsqlite/snapshot"
)

// Defaults of the DSN parameters, chosen for users: changes reach the
// bucket within a minute while an idle or read-only database costs no
// requests at all; the previous snapshot is kept; restores are fully
// checked.
const (
	DefaultFlushInterval = time.Minute
	DefaultFlushTimeout  = 10 * time.Minute
	DefaultKeepPrevious  = true
	DefaultJournalMode   = "WAL"
	DefaultBusyTimeout   = 5000 // milliseconds
)

// Config is a parsed DSN. ParseDSN fills it (starting from NewConfig's
// defaults) and FormatDSN turns it back into a DSN that parses to the same
// Config. Build one by hand for NewConnector.
type Config struct {
	// Bucket is the bucket's URL without the key: "s3://my-bucket",
	// "file:///var/lib/app" (a directory bucket), "file:data" (relative),
	// or "mem://name" (a process-local memory bucket). Empty when the
	// bucket is given to NewConnector with WithBucket.
	Bucket string
	// Key is the snapshot's key in the bucket, e.g. "apps/todo.db".
	Key string

	// Endpoint is a custom S3 endpoint (R2, MinIO-compatible servers,
	// versitygw). Empty means AWS.
	Endpoint string
	// Region is the S3 region; "auto" for Cloudflare R2. Empty means the
	// AWS configuration's region.
	Region string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT.
	PathStyle bool
	// Profile selects a shared AWS config/credentials profile.
	Profile string

	// FlushInterval is how often changes are flushed in the background;
	// 0 disables the loop (flush with Flush and on Close only).
	FlushInterval time.Duration
	// FlushTimeout bounds each background and final flush; 0 means no
	// bound.
	FlushTimeout time.Duration
	// KeepPrevious keeps the snapshot being replaced at KEY.prev.
	KeepPrevious bool
	// Local is a persistent path for the working copy. Empty means a
	// private temp directory, removed after a clean Close.
	Local string
	// Check is the integrity check a restore runs.
	Check snapshot.Check

	// SQLite holds go-sqlite3 connection parameters (_journal_mode,
	// _busy_timeout, _foreign_keys, ...), by their canonical names. The
	// driver adds _journal_mode=WAL and _busy_timeout=5000 when they are
	// absent.
	SQLite url.Values
}

// NewConfig returns a Config holding the defaults.
func NewConfig() *Config {
	return &Config{
		FlushInterval: DefaultFlushInterval,
		FlushTimeout:  DefaultFlushTimeout,
		KeepPrevious:  DefaultKeepPrevious,
		Check:         snapshot.CheckFull,
	}
}

// DSNError is a DSN that cannot be used. It names the parameter (or part
// of the DSN) at fault; it never repeats credentials.
type DSNError struct {
	// Param is the DSN parameter at fault, or a part of the DSN such as
	// "scheme", "bucket" or "key".
	Param string
	// Msg says what is wrong with it.
	Msg string
}

// Error implements error.
func (e *DSNError) Error() string {
	return fmt.Sprintf("bucketsqlite: invalid DSN: %s: %s", e.Param, e.Msg)
}

// ErrInvalidDSN is matched (errors.Is) by every *DSNError.
var ErrInvalidDSN = errors.New("bucketsqlite: invalid DSN")

// Is makes errors.Is(err, ErrInvalidDSN) hold.
func (e *DSNError) Is(target error) bool { return target == ErrInvalidDSN }

func dsnErr(param, format string, args ...any) error {
	return &DSNError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// s3Params are the parameters only an s3:// bucket takes.
var s3Params = []string{"endpoint", "region", "path_style", "profile"}

// ParseDSN parses a bucketsqlite DSN:
//
//	s3://BUCKET/KEY?region=auto&endpoint=https://ACCOUNT.r2.cloudflarestorage.com
//	file:///DIR/KEY            a directory bucket at DIR (file:DIR/KEY for a relative DIR)
//	mem://NAME/KEY             a process-local memory bucket
//
// followed by parameters, each at most once:
//
//	endpoint, region, path_style, profile   S3 settings (s3:// only)
//	flush_interval   Go duration; 0 disables the background loop (default 1m)
//	flush_timeout    Go duration bounding each flush; 0: none (default 10m)
//	keep_previous    true|false: keep the replaced snapshot at KEY.prev (default true)
//	local            persistent working-copy path (default: a private temp dir)
//	integrity_check  full|quick|none, run on restore (default full)
//	_journal_mode, _busy_timeout, _foreign_keys, ...   go-sqlite3 settings
//
// Unknown parameters, repeated parameters and malformed values are errors
// naming the parameter: a typo must not silently change durability.
// Credentials never go in a DSN; a DSN with user info is rejected.
func ParseDSN(dsn string) (*Config, error) {
	cfg := NewConfig()
	u, err := url.Parse(dsn)
	if err != nil {
		// url's messages quote the input, which could hold a secret.
		return nil, dsnErr("dsn", "not a URL")
	}
	if u.User != nil {
		return nil, dsnErr("dsn", "credentials do not belong in the DSN; use the standard AWS environment variables, shared config or an instance role")
	}
	if u.Fragment != "" || strings.HasSuffix(dsn, "#") {
		return nil, dsnErr("dsn", "unexpected fragment (#...)")
	}
	if err := parseLocation(cfg, u); err != nil {
		return nil, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, dsnErr("query", "malformed query string")
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vals := q[name]
		if name == "" {
			return nil, dsnErr("query", "a parameter without a name")
		}
		if len(vals) != 1 {
			return nil, dsnErr(name, "given %d times", len(vals))
		}
		if err := cfg.set(u.Scheme, name, vals[0]); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func parseLocation(cfg *Config, u *url.URL) error {
	switch u.Scheme {
	case "s3", "mem":
		if u.Opaque != "" {
			return dsnErr("dsn", "want %s://NAME/KEY", u.Scheme)
		}
		if u.Host == "" {
			return dsnErr("bucket", "missing bucket name in %s://NAME/KEY", u.Scheme)
		}
		if u.Port() != "" || strings.Contains(u.Host, ":") {
			return dsnErr("bucket", "a bucket name has no port")
		}
		cfg.Bucket = u.Scheme + "://" + u.Host
		cfg.Key = strings.TrimPrefix(u.Path, "/")
	case "file":
		p := u.Path
		if u.Opaque != "" {
			p, _ = url.PathUnescape(u.Opaque)
		} else if u.Host != "" && u.Host != "localhost" {
			return dsnErr("bucket", "file:// URLs name a local directory; host %q is not supported", u.Host)
		}
		if p == "" || strings.HasSuffix(p, "/") {
			return dsnErr("key", "missing key: want file:///DIR/KEY")
		}
		dir, key := path.Split(p)
		switch {
		case u.Opaque != "" && dir == "":
			dir = "."
		case u.Opaque == "" && !strings.HasPrefix(dir, "/"):
			return dsnErr("bucket", "file:// URLs take an absolute path: file:///DIR/KEY")
		}
		dir = path.Clean(dir)
		escaped := (&url.URL{Path: dir}).EscapedPath()
		if u.Opaque != "" {
			cfg.Bucket = "file:" + escaped
		} else {
			cfg.Bucket = "file://" + escaped
		}
		cfg.Key = key
	case "":
		return dsnErr("scheme", "missing scheme: want s3://BUCKET/KEY, file:///DIR/KEY or mem://NAME/KEY")
	default:
		return dsnErr("scheme", "unsupported scheme %q: want s3, file or mem", u.Scheme)
	}
	if cfg.Key == "" {
		return dsnErr("key", "missing key: the DSN's path names the snapshot, e.g. %s/app.db", cfg.Bucket)
	}
	if err := bucket.ValidateKey(cfg.Key); err != nil {
		return dsnErr("key", "%v", err)
	}
	return nil
}

func (cfg *Config) set(scheme, name, val string) error {
	if slices.Contains(s3Params, name) && scheme != "s3" {
		return dsnErr(name, "only s3:// buckets take it")
	}
	switch name {
	case "endpoint":
		u, err := url.Parse(val)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return dsnErr(name, "want an http:// or https:// URL")
		}
		if u.User != nil {
			return dsnErr(name, "credentials do not belong in the endpoint")
		}
		cfg.Endpoint = val
	case "region":
		if val == "" {
			return dsnErr(name, "empty")
		}
		cfg.Region = val
	case "path_style":
		b, err := parseBool(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		cfg.PathStyle = b
	case "profile":
		if val == "" {
			return dsnErr(name, "empty")
		}
		cfg.Profile = val
	case "flush_interval", "flush_timeout":
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return dsnErr(name, "want a non-negative Go duration such as 30s or 5m, got %q", val)
		}
		if name == "flush_interval" {
			cfg.FlushInterval = d
		} else {
			cfg.FlushTimeout = d
		}
	case "keep_previous":
		b, err := parseBool(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		cfg.KeepPrevious = b
	case "local":
		if val == "" {
			return dsnErr(name, "empty path")
		}
		cfg.Local = val
	case "integrity_check":
		c, err := snapshot.ParseCheck(val)
		if err != nil {
			return dsnErr(name, "%v", err)
		}
		cfg.Check = c
	default:
		if !strings.HasPrefix(name, "_") {
			return dsnErr(name, "unknown parameter")
		}
		canon, v, err := sqliteParam(name, val)
		if err != nil {
			return err
		}
		if cfg.SQLite == nil {
			cfg.SQLite = url.Values{}
		}
		if cfg.SQLite.Has(canon) {
			return dsnErr(name, "given twice (also as %s)", canon)
		}
		cfg.SQLite.Set(canon, v)
	}
	return nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

// sqliteAliases maps go-sqlite3's short parameter names to canonical ones.
var sqliteAliases = map[string]string{
	"_journal": "_journal_mode", "_timeout": "_busy_timeout", "_fk": "_foreign_keys",
	"_defer_fk": "_defer_foreign_keys", "_cslike": "_case_sensitive_like",
	"_rt": "_recursive_triggers", "_sync": "_synchronous", "_vacuum": "_auto_vacuum",
	"_locking": "_locking_mode",
}

func oneOf(vals ...string) func(string) (string, bool) {
	return func(s string) (string, bool) {
		for _, v := range vals {
			if strings.EqualFold(s, v) {
				return v, true
			}
		}
		return "", false
	}
}

func isBool(s string) (string, bool) {
	b, err := parseBool(s)
	if err != nil {
		return "", false
	}
	if b {
		return "1", true
	}
	return "0", true
}

func isInt(min int64) func(string) (string, bool) {
	return func(s string) (string, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < min {
			return "", false
		}
		return strconv.FormatInt(n, 10), true
	}
}

// sqliteParams are the go-sqlite3 parameters a DSN may pass through, each
// with a validator that also normalizes the value.
var sqliteParams = map[string]struct {
	valid func(string) (string, bool)
	want  string
}{
	"_journal_mode":             {oneOf("WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"), "WAL, DELETE, TRUNCATE, PERSIST, MEMORY or OFF"},
	"_busy_timeout":             {isInt(0), "milliseconds, a non-negative integer"},
	"_foreign_keys":             {isBool, "true or false"},
	"_defer_foreign_keys":       {isBool, "true or false"},
	"_case_sensitive_like":      {isBool, "true or false"},
	"_recursive_triggers":       {isBool, "true or false"},
	"_ignore_check_constraints": {isBool, "true or false"},
	"_query_only":               {isBool, "true or false"},
	"_synchronous":              {oneOf("OFF", "NORMAL", "FULL", "EXTRA"), "OFF, NORMAL, FULL or EXTRA"},
	"_auto_vacuum":              {oneOf("NONE", "FULL", "INCREMENTAL"), "NONE, FULL or INCREMENTAL"},
	"_secure_delete":            {oneOf("1", "0", "FAST", "true", "false"), "true, false or FAST"},
	"_cache_size":               {isInt(-1 << 62), "an integer"},
	"_txlock":                   {oneOf("deferred", "immediate", "exclusive"), "deferred, immediate or exclusive"},
	"_locking_mode":             {oneOf("NORMAL"), "NORMAL (EXCLUSIVE would lock the flusher out)"},
	"_loc":                      {func(s string) (string, bool) { return s, s != "" }, "auto or a time zone name"},
	"_mutex":                    {oneOf("no", "full"), "no or full"},
	"_stmt_cache_size":          {isInt(0), "a non-negative integer"},
}

func sqliteParam(name, val string) (string, string, error) {
	canon := name
	if a, ok := sqliteAliases[name]; ok {
		canon = a
	}
	if strings.HasPrefix(canon, "_auth") {
		return "", "", dsnErr(name, "SQLite user authentication is not supported: credentials do not belong in the DSN")
	}
	p, ok := sqliteParams[canon]
	if !ok {
		return "", "", dsnErr(name, "unknown go-sqlite3 parameter")
	}
	v, ok := p.valid(val)
	if !ok {
		return "", "", dsnErr(name, "want %s, got %q", p.want, val)
	}
	return canon, v, nil
}

// FormatDSN returns a DSN that ParseDSN turns back into cfg. Parameters at
// their default values are left out.
func (cfg *Config) FormatDSN() string {
	var b strings.Builder
	b.WriteString(cfg.Bucket)
	if cfg.Bucket != "" && !strings.HasSuffix(cfg.Bucket, "/") {
		b.WriteByte('/')
	}
	b.WriteString((&url.URL{Path: cfg.Key}).EscapedPath())
	q := url.Values{}
	if cfg.Endpoint != "" {
		q.Set("endpoint", cfg.Endpoint)
	}
	if cfg.Region != "" {
		q.Set("region", cfg.Region)
	}
	if cfg.PathStyle {
		q.Set("path_style", "true")
	}
	if cfg.Profile != "" {
		q.Set("profile", cfg.Profile)
	}
	if cfg.FlushInterval != DefaultFlushInterval {
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
	if cfg.Check != snapshot.CheckFull {
		q.Set("integrity_check", cfg.Check.String())
	}
	for k, v := range cfg.SQLite {
		q[k] = v
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
	return &c
}
