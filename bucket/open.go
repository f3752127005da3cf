package bucket

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/buckethead/bucketsqlite/internal/param"
)

// ErrInvalidURL is matched (errors.Is) by every *URLError: a bucket URL
// that ParseURL, Open or URL.Open rejected.
var ErrInvalidURL = errors.New("invalid bucket URL")

// URLError is a bucket URL that cannot be used. It names the part at fault
// and says what is wrong with it, without repeating the URL, which might
// hold a secret.
type URLError struct {
	// Param is the part of the URL at fault: "url" (the whole of it: not
	// a URL, credentials, a fragment), "scheme", "bucket" (the S3 bucket,
	// the memory bucket's name or the file URL's directory), "prefix",
	// "query", or the name of a query parameter ("endpoint", "region",
	// "path_style", "profile", or an unknown one).
	Param string
	// Msg says what is wrong with it.
	Msg string
}

// Error implements error.
func (e *URLError) Error() string {
	return ErrInvalidURL.Error() + ": " + e.Param + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidURL) hold.
func (e *URLError) Is(target error) bool { return target == ErrInvalidURL }

func urlErr(param, format string, args ...any) error {
	return &URLError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// URL is a parsed bucket URL: where a bucket lives and how to reach it.
// ParseURL makes one from a string and String turns it back into one;
// Open opens the bucket it names.
type URL struct {
	// Scheme is "s3", "file" or "mem".
	Scheme string
	// Bucket is the S3 bucket's name (s3) or the name Mem registers the
	// memory bucket under (mem).
	Bucket string
	// Prefix is prepended to every key (s3 and mem; see WithPrefix). It is
	// empty or ends in "/".
	Prefix string
	// Dir is the directory of a file URL, with forward slashes and no
	// trailing slash (unless it is a root such as "/"): absolute, or
	// relative to the working directory when Open is called.
	Dir string
	// Endpoint is the S3 endpoint URL, for S3-compatible services; empty
	// means AWS.
	Endpoint string
	// Region is the S3 region; empty means the SDK's default.
	Region string
	// Profile is the shared-config profile the S3 credentials come from;
	// empty means the SDK's default chain.
	Profile string
	// PathStyle addresses the bucket in the URL path (endpoint/BUCKET/KEY)
	// rather than in the host name, as most S3-compatible services need.
	PathStyle bool
}

// The query parameters of s3 URLs.
const (
	paramEndpoint  = "endpoint"
	paramRegion    = "region"
	paramPathStyle = "path_style"
	paramProfile   = "profile"
)

// Open opens the bucket that rawURL names; see ParseURL for the forms.
func Open(ctx context.Context, rawURL string) (Bucket, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return u.Open(ctx)
}

// Open opens the bucket u names: an S3 bucket through NewS3, a directory
// through NewDir or a named memory bucket through Mem, wrapped by
// WithPrefix when u has a prefix. u is checked as ParseURL checks a string.
func (u URL) Open(ctx context.Context) (Bucket, error) {
	u, err := ParseURL(u.String())
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "s3":
		b, err := NewS3(ctx, u.S3Config())
		if err != nil {
			return nil, err
		}
		return WithPrefix(b, u.Prefix), nil
	case "file":
		return NewDir(filepath.FromSlash(u.Dir))
	default: // "mem"; ParseURL accepts no other.
		return WithPrefix(Mem(u.Bucket), u.Prefix), nil
	}
}

// ParseURL parses a bucket URL, one of:
//
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path_style=BOOL&profile=NAME]
//	file:///DIR       a directory, by its absolute path (file:///C:/dir on Windows)
//	file:DIR          a directory relative to the working directory
//	mem://NAME[/PREFIX]
//
// For s3, every parameter is optional and given at most once. A boolean
// (path_style) is one of true, 1, yes, on, false, 0, no or off, in any
// case: the same grammar as every boolean of a bucketsqlite DSN.
// Credentials never go in the URL: a URL with user information
// (s3://KEY:SECRET@BUCKET) is rejected, and S3 credentials come from the
// environment or the profile. A bucket or memory name holds letters,
// digits, '.', '-' and '_'. A PREFIX of "db/prod" or "db/prod/" puts
// every key under "db/prod/"; it follows the rules of ValidateKey.
// Percent-encoding is decoded, so "s3://b/my%20db" has the prefix
// "my db/" and "file:my%20dir" the directory "my dir"; query values are
// query-encoded, where '+' means a space. A directory loses its trailing
// slashes.
//
// Errors are *URLError values, which match ErrInvalidURL and name the
// part at fault: an unknown scheme or parameter, a parameter given twice
// or not valid for the scheme, a bad boolean, a missing bucket name or
// directory, credentials in the URL.
func ParseURL(rawURL string) (URL, error) {
	pu, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, secrets included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return URL{}, urlErr("url", "%v", err)
	}
	if pu.User != nil {
		return URL{}, urlErr("url", "credentials (user information) do not belong in a bucket URL; for S3 use the environment or profile=")
	}
	var u URL
	switch pu.Scheme {
	case "s3", "file", "mem":
		u.Scheme = pu.Scheme
	case "":
		return URL{}, urlErr("scheme", "missing: want s3://, file: or mem://")
	default:
		return URL{}, urlErr("scheme", "%q is not supported: want s3, file or mem", pu.Scheme)
	}
	if pu.Fragment != "" || strings.Contains(rawURL, "#") {
		return URL{}, urlErr("url", "a fragment (#) is not allowed; percent-encode '#' as %%23")
	}
	q, err := parseQuery(u.Scheme, pu.RawQuery)
	if err != nil {
		return URL{}, err
	}
	if u.Scheme == "file" {
		if u.Dir, err = fileDir(pu); err != nil {
			return URL{}, err
		}
		return u, nil
	}
	if pu.Opaque != "" {
		return URL{}, urlErr("bucket", "want %s://NAME", u.Scheme)
	}
	if pu.Host == "" {
		return URL{}, urlErr("bucket", "missing: want %s://NAME", u.Scheme)
	}
	if err := checkName(pu.Host); err != nil {
		return URL{}, urlErr("bucket", "%v", err)
	}
	u.Bucket = pu.Host
	if strings.HasPrefix(pu.Path, "//") {
		return URL{}, urlErr("prefix", "has an empty path segment")
	}
	if p := strings.TrimSuffix(strings.TrimPrefix(pu.Path, "/"), "/"); p != "" {
		if err := ValidateKey(p); err != nil {
			return URL{}, urlErr("prefix", "%s", strings.TrimPrefix(err.Error(), ErrInvalidKey.Error()+" "))
		}
		u.Prefix = p + "/"
	}
	if err := u.setS3Params(q); err != nil {
		return URL{}, err
	}
	return u, nil
}

// parseQuery parses a URL's query and checks that each parameter is known,
// valid for the scheme, given once and not empty.
func parseQuery(scheme, rawQuery string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, urlErr("query", "%v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		vals := q[name]
		var err error
		switch {
		case name == "":
			err = urlErr("query", "a parameter without a name")
		case !slices.Contains(s3Params, name):
			err = urlErr(name, "unknown parameter")
		case scheme != "s3":
			err = urlErr(name, "only s3:// URLs take it")
		case len(vals) > 1:
			err = urlErr(name, "given %d times", len(vals))
		case vals[0] == "":
			err = urlErr(name, "empty")
		}
		if err != nil {
			return nil, err
		}
	}
	return q, nil
}

// s3Params are the query parameters of an s3 URL.
var s3Params = []string{paramEndpoint, paramRegion, paramPathStyle, paramProfile}

// fileDir returns the directory a file URL names.
func fileDir(pu *url.URL) (string, error) {
	dir := pu.Path
	if pu.Opaque != "" { // file:DIR, relative
		d, err := url.PathUnescape(pu.Opaque)
		if err != nil {
			return "", urlErr("bucket", "%v", err)
		}
		dir = d
	} else if h := pu.Host; h != "" && !strings.EqualFold(h, "localhost") {
		return "", urlErr("bucket", "a file URL takes no host (%q): want file:///DIR or file:DIR", h)
	}
	if dir == "" {
		return "", urlErr("bucket", "missing directory: want file:///DIR or file:DIR")
	}
	if hasControl(dir) {
		return "", urlErr("bucket", "the directory contains a control character")
	}
	if runtime.GOOS == "windows" && len(dir) >= 3 && dir[0] == '/' && dir[2] == ':' {
		dir = dir[1:] // file:///C:/dir
	}
	for len(dir) > 1 && strings.HasSuffix(dir, "/") && !isDriveRoot(dir) {
		dir = dir[:len(dir)-1]
	}
	return dir, nil
}

// isDriveRoot reports whether dir is a Windows drive's root, "C:/", whose
// slash is not a trailing one.
func isDriveRoot(dir string) bool {
	return runtime.GOOS == "windows" && len(dir) == 3 && dir[1] == ':'
}

// isAbsDir reports whether a file URL's directory is absolute, that is
// written file:///DIR rather than file:DIR.
func isAbsDir(dir string) bool {
	return strings.HasPrefix(dir, "/") ||
		runtime.GOOS == "windows" && len(dir) >= 2 && dir[1] == ':' && filepath.IsAbs(filepath.FromSlash(dir))
}

// setS3Params sets u's S3 settings from the checked query q.
func (u *URL) setS3Params(q url.Values) error {
	u.Region = q.Get(paramRegion)
	u.Profile = q.Get(paramProfile)
	for name, v := range map[string]string{paramRegion: u.Region, paramProfile: u.Profile} {
		if hasControl(v) {
			return urlErr(name, "contains a control character")
		}
	}
	if v := q.Get(paramPathStyle); v != "" {
		b, err := param.ParseBool(v)
		if err != nil {
			return urlErr(paramPathStyle, "%v", err)
		}
		u.PathStyle = b
	}
	if v := q.Get(paramEndpoint); v != "" {
		ep, err := url.Parse(v)
		msg := ""
		switch {
		case err != nil:
			msg = "not a URL"
		case ep.User != nil:
			msg = "credentials do not belong in the endpoint"
		case ep.Scheme != "http" && ep.Scheme != "https" || ep.Host == "":
			msg = "want http://HOST[:PORT] or https://HOST[:PORT]"
		case hasControl(v):
			msg = "contains a control character"
		}
		if msg != "" {
			return urlErr(paramEndpoint, "%s", msg)
		}
		u.Endpoint = v
	}
	return nil
}

// S3Config returns the configuration of the S3 bucket u names (an s3
// URL), for callers that add what a URL cannot carry, such as a Client,
// before they call NewS3. The prefix is not part of it: wrap the bucket
// with WithPrefix(b, u.Prefix).
func (u URL) S3Config() S3Config {
	return S3Config{
		Bucket:    u.Bucket,
		Endpoint:  u.Endpoint,
		Region:    u.Region,
		Profile:   u.Profile,
		PathStyle: u.PathStyle,
	}
}

// checkName checks an S3 bucket or memory bucket name: letters, digits,
// '.', '-' and '_'. (S3 itself is stricter; this only keeps the name a
// plain URL host.)
func checkName(s string) error {
	if len(s) > 255 {
		return fmt.Errorf("longer than 255 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%q: only letters, digits, '.', '-' and '_' are allowed", s)
		}
	}
	return nil
}

// hasControl reports whether s holds an ASCII control character.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// String returns u as a URL string that ParseURL parses back into u. It
// holds no secret, since a URL never does.
func (u URL) String() string {
	pu := url.URL{Scheme: u.Scheme}
	switch u.Scheme {
	case "file":
		switch {
		case u.Dir == "":
		case isAbsDir(u.Dir):
			pu.Path = u.Dir
			if !strings.HasPrefix(pu.Path, "/") {
				pu.Path = "/" + pu.Path // file:///C:/dir
			}
		default:
			pu.Opaque = (&url.URL{Path: u.Dir}).EscapedPath()
		}
	default:
		pu.Host = u.Bucket
		if u.Prefix != "" {
			pu.Path = "/" + u.Prefix
		}
	}
	// Parameters a scheme does not take are written all the same, so
	// that ParseURL rejects a URL built by hand with them.
	q := url.Values{}
	for name, v := range map[string]string{
		paramEndpoint: u.Endpoint, paramRegion: u.Region, paramProfile: u.Profile,
	} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if u.PathStyle {
		q.Set(paramPathStyle, "true")
	}
	pu.RawQuery = q.Encode()
	return pu.String()
}
