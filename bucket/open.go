package bucket

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// ErrInvalidURL means a bucket URL was rejected by ParseURL; the error says
// what is wrong without repeating the URL, which might hold a secret.
var ErrInvalidURL = errors.New("invalid bucket URL")

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
	// Dir is the directory of a file URL, an absolute path with forward
	// slashes.
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
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path_style=true&profile=NAME]
//	file:///DIR
//	mem://NAME[/PREFIX]
//
// For s3, every parameter is optional; path_style takes a boolean
// (strconv.ParseBool). Credentials never go in the URL: a URL with user
// information (s3://KEY:SECRET@BUCKET) is rejected, and S3 credentials come
// from the environment or the profile. A PREFIX of "db/prod" or "db/prod/"
// puts every key under "db/prod/"; it follows the rules of ValidateKey.
// DIR is an absolute path (on Windows, file:///C:/dir). Percent-encoding is
// decoded, so "s3://b/my%20db" has the prefix "my db/".
//
// Errors match ErrInvalidURL and name the problem: an unknown scheme or
// parameter, a parameter given twice or not valid for the scheme, a bad
// boolean, a missing bucket name or directory, credentials in the URL.
func ParseURL(rawURL string) (URL, error) {
	bad := func(format string, args ...any) (URL, error) {
		return URL{}, fmt.Errorf("bucket: %w: "+format, append([]any{ErrInvalidURL}, args...)...)
	}
	pu, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, secrets included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	if pu.User != nil {
		return bad("credentials (user information) are not allowed in a bucket URL; for S3 use the environment or profile=")
	}
	var u URL
	switch pu.Scheme {
	case "s3", "file", "mem":
		u.Scheme = pu.Scheme
	case "":
		return bad("missing scheme: want s3://, file:// or mem://")
	default:
		return bad("unknown scheme %q: want s3, file or mem", pu.Scheme)
	}
	if pu.Opaque != "" {
		return bad("want %s:// followed by a %s", u.Scheme, map[string]string{
			"s3": "bucket name", "file": "absolute path", "mem": "name"}[u.Scheme])
	}
	if pu.Fragment != "" || strings.Contains(rawURL, "#") {
		return bad("a fragment (#) is not allowed; percent-encode '#' in a prefix as %%23")
	}
	q, err := url.ParseQuery(pu.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for name, vals := range q {
		switch name {
		case paramEndpoint, paramRegion, paramPathStyle, paramProfile:
			if u.Scheme != "s3" {
				return bad("parameter %q is valid only in s3:// URLs", name)
			}
		default:
			return bad("unknown parameter %q", name)
		}
		if len(vals) > 1 {
			return bad("parameter %q given %d times", name, len(vals))
		}
		if vals[0] == "" {
			return bad("parameter %q is empty", name)
		}
	}

	switch u.Scheme {
	case "file":
		if h := pu.Host; h != "" && !strings.EqualFold(h, "localhost") {
			return bad("file URLs take no host (%q): want file:///DIR", h)
		}
		u.Dir = pu.Path
		if u.Dir == "" {
			return bad("missing directory: want file:///DIR")
		}
		if hasControl(u.Dir) {
			return bad("directory contains a control character")
		}
		if runtime.GOOS == "windows" && len(u.Dir) >= 3 && u.Dir[0] == '/' && u.Dir[2] == ':' {
			u.Dir = u.Dir[1:] // file:///C:/dir
		}
		return u, nil
	case "mem":
		if pu.Host == "" {
			return bad("missing name: want mem://NAME")
		}
		if err := checkName(pu.Host); err != nil {
			return bad("memory bucket name: %v", err)
		}
	case "s3":
		if pu.Host == "" {
			return bad("missing bucket name: want s3://BUCKET")
		}
		if err := checkName(pu.Host); err != nil {
			return bad("bucket name: %v", err)
		}
	}
	u.Bucket = pu.Host
	if strings.HasPrefix(pu.Path, "//") {
		return bad("prefix has an empty path segment")
	}
	if p := strings.TrimSuffix(strings.TrimPrefix(pu.Path, "/"), "/"); p != "" {
		if err := ValidateKey(p); err != nil {
			return bad("prefix: %v", err)
		}
		u.Prefix = p + "/"
	}

	u.Region = q.Get(paramRegion)
	u.Profile = q.Get(paramProfile)
	for _, v := range []string{u.Region, u.Profile} {
		if hasControl(v) {
			return bad("parameter value contains a control character")
		}
	}
	if v := q.Get(paramPathStyle); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("parameter %q: %q is not a boolean (want true or false)", paramPathStyle, v)
		}
		u.PathStyle = b
	}
	if v := q.Get(paramEndpoint); v != "" {
		ep, err := url.Parse(v)
		switch {
		case err != nil:
			return bad("parameter %q is not a URL", paramEndpoint)
		case ep.User != nil:
			return bad("parameter %q: credentials are not allowed in the endpoint", paramEndpoint)
		case ep.Scheme != "http" && ep.Scheme != "https" || ep.Host == "":
			return bad("parameter %q: want http://HOST[:PORT] or https://HOST[:PORT]", paramEndpoint)
		case hasControl(v):
			return bad("parameter %q contains a control character", paramEndpoint)
		}
		u.Endpoint = v
	}
	return u, nil
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
		pu.Path = u.Dir
		if pu.Path != "" && !strings.HasPrefix(pu.Path, "/") {
			pu.Path = "/" + pu.Path // file:///C:/dir
		}
	default:
		pu.Host = u.Bucket
		if u.Prefix != "" {
			pu.Path = "/" + u.Prefix
		}
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
	}
	return pu.String()
}
