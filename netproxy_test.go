package bucketsqlite_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy is a TCP proxy on 127.0.0.1 in front of a server, which the
// test can tell to cut connections in the middle of a transfer: after a
// number of bytes in one direction, both sides of the connection carrying
// them are reset.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	rules [2]*cutRule // by direction
	cuts  int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

type direction int

const (
	up   direction = iota // client to server: request bodies, uploads
	down                  // server to client: response bodies, downloads
)

// cutRule cuts the connection that carries byte after+1 in its direction,
// counted from when the rule was set, then starts counting again, times
// times (-1: for ever).
type cutRule struct {
	after, seen int64
	times       int
}

// startProxy starts a proxy to target (host:port) for the duration of t.
func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

// Endpoint is the proxy's URL.
func (p *cutProxy) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Cut arms a rule for dir: cut after `after` more bytes, times times (-1:
// every time).
func (p *cutProxy) Cut(dir direction, after int64, times int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules[dir] = &cutRule{after: after, times: times}
}

// Heal removes the rules: connections carry everything again.
func (p *cutProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = [2]*cutRule{}
}

// Cuts returns how many connections were cut.
func (p *cutProxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		reset := func() {
			for _, c := range []net.Conn{client, server} {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // RST, as a dropped link looks to the peer
				}
				c.Close()
			}
		}
		p.wg.Go(func() { p.pipe(up, client, server, reset) })
		p.wg.Go(func() { p.pipe(down, server, client, reset) })
	}
}

// pipe copies src to dst, and resets the connection when dir's rule says.
func (p *cutProxy) pipe(dir direction, src, dst net.Conn, reset func()) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pass, cut := p.admit(dir, int64(n))
			if pass > 0 {
				if _, werr := dst.Write(buf[:pass]); werr != nil {
					reset()
					return
				}
			}
			if cut {
				reset()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			reset()
			return
		}
	}
}

// admit counts n bytes in dir and returns how many of them may pass, and
// whether the connection must then be cut.
func (p *cutProxy) admit(dir direction, n int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rules[dir]
	if r == nil || r.times == 0 {
		return n, false
	}
	if r.seen+n <= r.after {
		r.seen += n
		return n, false
	}
	pass := r.after - r.seen
	r.seen = 0
	if r.times > 0 {
		r.times--
	}
	p.cuts++
	return pass, true
}
