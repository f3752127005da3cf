package netproxy_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/buckethead/bucketsqlite/internal/netproxy"
)

// echoServer accepts connections, echoes what each sends and, when it
// ends, reports on got everything it received.
func echoServer(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var all bytes.Buffer
				io.Copy(io.MultiWriter(c, &all), c)
				ch <- all.String()
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func newProxy(t *testing.T, target string) *netproxy.Proxy {
	t.Helper()
	p, err := netproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// exchange sends msg through p, half-closes, and returns what came back
// and the read's error.
func exchange(t *testing.T, p *netproxy.Proxy, msg string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(msg))
	c.(*net.TCPConn).CloseWrite()
	back, err := io.ReadAll(c)
	return string(back), err
}

func TestPassThrough(t *testing.T) {
	addr, got := echoServer(t)
	p := newProxy(t, addr)
	if !strings.HasPrefix(p.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint %q", p.Endpoint())
	}
	msg := strings.Repeat("0123456789", 10000)
	back, err := exchange(t, p, msg)
	if err != nil || back != msg {
		t.Fatalf("echo through the proxy: %d bytes back, %v", len(back), err)
	}
	if s := <-got; s != msg {
		t.Fatalf("the server got %d bytes, want %d", len(s), len(msg))
	}
	if p.Cuts() != 0 {
		t.Fatalf("Cuts = %d", p.Cuts())
	}
}

func TestCutUp(t *testing.T) {
	addr, got := echoServer(t)
	p := newProxy(t, addr)
	p.Cut(netproxy.Up, 4, 1)
	if _, err := exchange(t, p, "0123456789"); err == nil {
		t.Error("a cut connection read to its end without an error")
	}
	// The reset may discard what the server had not read yet: it gets at
	// most the 4 bytes before the cut, never more.
	if s := <-got; !strings.HasPrefix("0123", s) {
		t.Fatalf("the server got %q before the cut; want no more than the first 4 bytes", s)
	}
	if p.Cuts() != 1 {
		t.Fatalf("Cuts = %d, want 1", p.Cuts())
	}
	// The rule was for one cut: the next connection carries everything.
	if back, err := exchange(t, p, "0123456789"); err != nil || back != "0123456789" {
		t.Fatalf("after the one cut: %q, %v", back, err)
	}
	<-got
}

func TestCutDownForeverThenHeal(t *testing.T) {
	addr, got := echoServer(t)
	p := newProxy(t, addr)
	p.Cut(netproxy.Down, 3, netproxy.Forever)
	for i := range 3 {
		back, err := exchange(t, p, "abcdef")
		if len(back) > 3 || err == nil && back == "abcdef" {
			t.Fatalf("exchange %d under the rule: %q, %v", i, back, err)
		}
		<-got
	}
	if p.Cuts() != 3 {
		t.Fatalf("Cuts = %d, want 3", p.Cuts())
	}
	p.Heal()
	if back, err := exchange(t, p, "abcdef"); err != nil || back != "abcdef" {
		t.Fatalf("after Heal: %q, %v", back, err)
	}
	<-got
}
