//go:build cgo

package driver_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buckethead/bucketsqlite/driver"
	"github.com/buckethead/bucketsqlite/internal/s3test"
)

// pingBound bounds a Ping that must fail: the failure is what is
// checked, the bound only ends a hang.
const pingBound = 2 * time.Second

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

// closedPort returns the URL of a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestBadS3Configuration opens databases with what users get wrong:
// credentials, the bucket's name, the endpoint. The first Ping fails,
// within its deadline, with an error that says what went wrong; nothing
// the user can see, errors or log lines, contains the secret key.
func TestBadS3Configuration(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t, "")
	const wrongSecret = "WRONGSECRETdoesnotmatch0123456789"
	tests := []struct {
		name             string
		bucket, endpoint string
		access, secret   string
		want             []string // the error says one of these
		deadline         bool     // and matches context.DeadlineExceeded
	}{
		{"wrong secret key", name, srv.Endpoint, srv.AccessKey, wrongSecret, []string{"SignatureDoesNotMatch", "403"}, false},
		{"unknown access key", name, srv.Endpoint, "NOSUCHACCESSKEY", srv.SecretKey, []string{"InvalidAccessKeyId", "access key"}, false},
		{"missing bucket", "no-such-bucket-here", srv.Endpoint, srv.AccessKey, srv.SecretKey, []string{"NoSuchBucket", "no such bucket"}, false},
		{"unreachable endpoint", name, closedPort(t), srv.AccessKey, srv.SecretKey, []string{"connection refused"}, true},
		{"endpoint that never answers", name, silentListener(t), srv.AccessKey, srv.SecretKey, []string{"deadline exceeded"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", tt.access)
			t.Setenv("AWS_SECRET_ACCESS_KEY", tt.secret)
			t.Setenv("AWS_REGION", srv.Region)
			dsn := fmt.Sprintf("s3://%s/app.db?endpoint=%s&region=%s&path_style=true&flush_interval=0", tt.bucket, tt.endpoint, srv.Region)
			cfg, err := driver.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			c, err := driver.NewConnector(cfg, driver.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			pctx, cancel := context.WithTimeout(ctx, pingBound)
			start := time.Now()
			err = db.PingContext(pctx)
			cancel()
			t.Logf("Ping after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("Ping succeeded")
			}
			if tt.deadline && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("error %v does not say what happened", err)
			}
			said := false
			for _, w := range tt.want {
				said = said || strings.Contains(err.Error(), w)
			}
			if !said {
				t.Errorf("error %q says none of %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "app.db") {
				t.Errorf("error does not name the snapshot: %v", err)
			}
			// A write fails the same way; Close, with nothing restored,
			// does not flush and succeeds.
			if _, err := db.ExecContext(ctxWithin(t, pingBound), "CREATE TABLE t(x)"); err == nil {
				t.Error("a write succeeded on a database that could not be restored")
			}
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			for _, secret := range []string{srv.SecretKey, wrongSecret} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Fatalf("the secret key appears in an error or a log line:\n%v\n%s", err, logs.String())
				}
			}
			if !strings.Contains(logs.String(), "restore failed") {
				t.Errorf("the failure was not logged:\n%s", logs.String())
			}
		})
	}
}

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return c
}
