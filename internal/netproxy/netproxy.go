package netproxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Direction is the way bytes flow through the proxy.
type Direction int

const (
	// Up is from the client to the server: requests and their bodies.
	Up Direction = iota
	// Down is from the server to the client: responses and their bodies.
	Down
)

// Forever, as Cut's times, cuts every connection that reaches the limit.
const Forever = -1

// Proxy is a TCP proxy on 127.0.0.1 in front of one server. Make one with
// New; its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	rules [2]*rule // by direction
	cuts  int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// rule cuts the connection that carries byte after+1 in its direction,
// counted from when the rule was set, then starts counting again, times
// times (Forever: for ever).
type rule struct {
	after, seen int64
	times       int
}

// New starts a proxy to target (host:port) on a free port of 127.0.0.1.
// It dials target anew for every connection it accepts. Close stops it.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	return p, nil
}

// Endpoint is the proxy's URL, http://127.0.0.1:PORT.
func (p *Proxy) Endpoint() string { return "http://" + p.Addr() }

// Addr is the proxy's address, 127.0.0.1:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut arms a rule for dir, replacing the one it had: pass after more
// bytes, then reset the connection that carries the next one; do that
// times times (Forever: every time).
func (p *Proxy) Cut(dir Direction, after int64, times int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules[dir] = &rule{after: after, times: times}
}

// Heal removes the rules: connections carry everything again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = [2]*rule{}
}

// Cuts returns how many connections the proxy has cut.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Close stops the proxy: it stops accepting, closes every connection and
// waits for its goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
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
		p.wg.Go(func() { p.pipe(Up, client, server, reset) })
		p.wg.Go(func() { p.pipe(Down, server, client, reset) })
	}
}

// pipe copies src to dst, and resets the connection when dir's rule says.
func (p *Proxy) pipe(dir Direction, src, dst net.Conn, reset func()) {
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
func (p *Proxy) admit(dir Direction, n int64) (int64, bool) {
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
