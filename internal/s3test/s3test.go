package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region every server reports and signs with.
const Region = "us-east-1"

const (
	// setupTimeout bounds finding (possibly installing: ~60 s cold) and
	// starting a server.
	setupTimeout = 5 * time.Minute
	// readyTimeout bounds the wait for one launched server to answer.
	readyTimeout = 30 * time.Second
	// startAttempts is how often a launch is retried on a port collision.
	startAttempts = 5
)

// Server is a running versitygw S3 server with one root user. Its fields
// describe it; do not change them.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Region is the region the server signs with (always [Region]).
	Region string
	// AccessKey and SecretKey are the root user's credentials, random for
	// each server.
	AccessKey, SecretKey string
	// Dir is the posix root: each sub-directory is a bucket.
	Dir string

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid after exited is closed
	logs    *tailBuffer
	ownDir  bool // Close removes Dir
	closing sync.Once
	closed  error
	buckets atomic.Int64
}

// Start starts a server for tb and stops it with tb.Cleanup. When no
// server can be found, installed or started, it calls tb.Skip with the
// reason, or tb.Fatal if the environment variable CI is true.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := start(ctx, tb.TempDir(), false)
	if err != nil {
		unavailable(tb, err)
		return nil // not reached: unavailable stops the test
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("s3test: stop versitygw: %v\n%s", err, srv.Logs())
		}
	})
	return srv
}

// StartServer starts a server over a new temporary directory, for
// programs that are not tests. The caller must Close it, which also
// removes the directory.
func StartServer(ctx context.Context) (*Server, error) {
	dir, err := os.MkdirTemp("", "s3test-*")
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	srv, err := start(ctx, dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

// unavailable stops tb because no server could be had: a skip locally, a
// failure in CI, where a silently skipped S3 suite would hide regressions.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("s3test: no S3 test server (CI=true, so this fails instead of skipping): %v", err)
		return
	}
	tb.Skipf("s3test: SKIPPING: no S3 test server: %v\n"+
		"\tSet VERSITYGW=/path/to/versitygw or run: go install %s", err, installPackage)
}

func start(ctx context.Context, dir string, ownDir bool) (*Server, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3test: find versitygw: %w", err)
	}
	var lastErr error
	for range startAttempts {
		srv, err := launch(ctx, bin, dir)
		if err == nil {
			srv.ownDir = ownDir
			return srv, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port in use")

// launch runs one server on a free loopback port and waits until it
// answers an authenticated request.
func launch(ctx context.Context, bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("s3test: find a free port: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	srv := &Server{
		Endpoint:  "http://" + addr,
		Region:    Region,
		AccessKey: randomKey(10),
		SecretKey: randomKey(20),
		Dir:       dir,
		exited:    make(chan struct{}),
		logs:      &tailBuffer{max: 64 << 10},
	}
	srv.cmd = exec.Command(bin,
		"--port", addr,
		"--access", srv.AccessKey,
		"--secret", srv.SecretKey,
		"--region", srv.Region,
		"--keep-alive", // without it every request opens a new connection
		"--quiet",
		"posix", dir)
	srv.cmd.Env = serverEnv()
	srv.cmd.Stdout = srv.logs
	srv.cmd.Stderr = srv.logs
	setDeathSignal(srv.cmd)
	if err := srv.startProcess(); err != nil {
		return nil, fmt.Errorf("s3test: start %s: %w", bin, err)
	}
	if err := srv.waitReady(ctx); err != nil {
		_ = srv.kill()
		logs := srv.Logs()
		if strings.Contains(logs, "address already in use") {
			return nil, fmt.Errorf("s3test: versitygw on %s: %w", addr, errPortInUse)
		}
		return nil, fmt.Errorf("s3test: versitygw on %s did not come up: %w\n%s", addr, err, logs)
	}
	return srv, nil
}

// startProcess starts the server from a goroutine locked to its OS thread
// for the server's lifetime: Linux sends the parent-death signal when the
// thread that forked the child exits, and Go may otherwise retire that
// thread while the server is still wanted.
func (s *Server) startProcess() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	return <-started
}

// serverEnv is the environment without the variables versitygw reads its
// settings from, so that a developer's settings cannot turn on TLS or
// change the credentials under the tests.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_ACCESS_KEY") ||
			strings.HasPrefix(kv, "ROOT_SECRET") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls until the server answers ListBuckets with this server's
// credentials: a signed request, so another process that grabbed the
// port in the meantime cannot pass for it.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := s.Client()
	var lastErr error
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("exited: %v", s.waitErr)
		default:
		}
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListBuckets(reqCtx, &s3.ListBucketsInput{}, func(o *s3.Options) {
			o.RetryMaxAttempts = 1
		})
		reqCancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-s.exited:
			return fmt.Errorf("exited: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", context.Cause(ctx), lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePort asks the kernel for a free loopback port. It is free only
// until someone else takes it: launch retries on a collision.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return strings.ToUpper(hex.EncodeToString(b))
}

// Close stops the server and, for a server from StartServer, removes its
// directory. It is safe to call more than once.
func (s *Server) Close() error {
	s.closing.Do(func() {
		s.closed = s.kill()
		if s.ownDir {
			if err := os.RemoveAll(s.Dir); err != nil && s.closed == nil {
				s.closed = err
			}
		}
	})
	return s.closed
}

// kill stops the process and waits until it is reaped.
func (s *Server) kill() error {
	select {
	case <-s.exited:
		return nil // already gone; an unexpected exit shows in Logs
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("versitygw did not exit after SIGKILL")
	}
}

// Logs returns the tail of the server's output, for failure messages.
func (s *Server) Logs() string { return s.logs.String() }

// Client returns a new client for the server: static credentials, path
// style addressing, and checksums only where an operation requires them
// (what a client of most S3-compatible servers needs).
func (s *Server) Client() *s3.Client { return s.ClientAt(s.Endpoint) }

// ClientAt is Client that sends its requests to endpoint instead of the
// server's own: a proxy in front of the server (see internal/netproxy).
func (s *Server) ClientAt(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates a bucket and returns its name. An empty name picks a
// fresh one from tb.Name(). Failure to create it fails tb: the server is
// known to be up.
func (s *Server) NewBucket(tb testing.TB, name string) string {
	tb.Helper()
	if name == "" {
		name = s.bucketName(tb.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.CreateBucket(ctx, name); err != nil {
		tb.Fatalf("%v\n%s", err, s.Logs())
	}
	return name
}

// CreateBucket creates the bucket name on the server.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("s3test: create bucket %q: %w", name, err)
	}
	return nil
}

var notBucketChars = regexp.MustCompile(`[^a-z0-9]+`)

// bucketName derives a valid, unused bucket name (3-63 characters of
// a-z, 0-9 and '-') from a test name.
func (s *Server) bucketName(testName string) string {
	base := strings.Trim(notBucketChars.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	suffix := fmt.Sprintf("-%d", s.buckets.Add(1))
	if max := 63 - len(suffix); len(base) > max {
		base = strings.TrimRight(base[:max], "-")
	}
	if base == "" {
		base = "bucket"
	}
	return base + suffix
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
