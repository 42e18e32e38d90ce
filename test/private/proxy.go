package private

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy that can partition the network: while partitioned it accepts
// connections and reads what both sides send, but delivers nothing until healed — like a
// network that silently holds packets, so only timeouts (AMQP heartbeats, TCP keepalives, dial
// deadlines) can tell. A connection that either side closes is closed on the other side too.
type Proxy struct {
	t        testing.TB
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	healed chan struct{} // closed while the network is healthy
	conns  map[net.Conn]struct{}
	// refusing closes every connection at once, existing and new, until Heal: a server that
	// went away (connection refused or reset), as opposed to a silent partition.
	refusing bool
	closed   bool
	wg       sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards to upstream ("host:port"). It is
// closed when the test ends.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("chaos: proxy listen: %v", err)
	}
	p := &Proxy{t: t, ln: ln, upstream: upstream, healed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.healed)
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Partition stops delivering bytes in both directions, on existing and new connections.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
		p.healed = make(chan struct{})
	default:
	}
}

// Refuse closes every connection through the proxy and closes new ones as soon as they are
// accepted, until Heal: clients see their connections broken and every reconnection fail at
// once, as when the server behind the proxy has gone away.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = true
	for c := range p.conns {
		c.Close()
	}
}

// Heal delivers everything held back and resumes forwarding (and accepting, after Refuse).
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = false
	select {
	case <-p.healed:
	default:
		close(p.healed)
	}
}

func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healed
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.refusing {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			down.Close()
			continue
		}
		if !p.track(down, up) {
			down.Close()
			up.Close()
			if p.isClosed() {
				return
			}
			continue // refusing
		}
		done := make(chan struct{})
		var once sync.Once
		closeBoth := func() {
			once.Do(func() {
				close(done)
				down.Close()
				up.Close()
				p.mu.Lock()
				delete(p.conns, down)
				delete(p.conns, up)
				p.mu.Unlock()
			})
		}
		p.wg.Go(func() { p.pipe(up, down, done, closeBoth) })
		p.wg.Go(func() { p.pipe(down, up, done, closeBoth) })
	}
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// pipe copies src to dst, holding each chunk while the network is partitioned.
func (p *Proxy) pipe(dst, src net.Conn, done <-chan struct{}, closeBoth func()) {
	defer closeBoth()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.gate():
			case <-done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset, or closed by closeBoth
		}
	}
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.Heal()
	p.ln.Close()
	p.wg.Wait()
}
