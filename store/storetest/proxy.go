package storetest

import (
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy between a service and one store, so a test can
// fail the network the ways real networks fail: cut every connection and
// refuse new ones (a partition), slow every byte down (a congested link),
// or lose the answers of the connections open at one moment (a link that
// died after the request went out).
type Proxy struct {
	ln     net.Listener
	target string
	// delay is how long every chunk of bytes takes to cross the proxy, in
	// each direction, in nanoseconds; chunks keep their order and several
	// may be in flight, as on a long link.
	delay atomic.Int64
	// accepted counts the connections made to the proxy.
	accepted atomic.Int64

	mu sync.Mutex
	// down refuses new connections.
	down  bool
	conns map[net.Conn]*link
	// resume is open while the proxy hangs, as a SIGSTOPped server does:
	// connections are accepted and kept, and nothing crosses.
	resume chan struct{}
}

// link is one proxied connection's state.
type link struct {
	// muted drops what the store sends on this connection.
	muted atomic.Bool
}

// Proxied puts a Proxy in front of the service at raw (a postgres:// or
// redis:// URL) and returns it with the URL that goes through it. It is
// closed when the test ends.
func Proxied(t testing.TB, raw string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: map[net.Conn]*link{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		go p.pipe(in)
	}
}

func (p *Proxy) pipe(in net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	l := &link{}
	if !p.track(l, in, out) {
		return
	}
	go func() { p.relay(out, in, nil); out.Close() }()
	p.relay(in, out, &l.muted)
	in.Close()
}

// track registers both ends, or closes them when a cut came first.
func (p *Proxy) track(l *link, conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		for _, conn := range conns {
			conn.Close()
		}
		return false
	}
	for _, conn := range conns {
		p.conns[conn] = l
	}
	return true
}

// relay copies src to dst until either fails, holding each chunk back for
// the delay in force when it was read, and dropping it while muted is set.
func (p *Proxy) relay(dst, src net.Conn, muted *atomic.Bool) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	chunks := make(chan chunk, 64)
	go func() {
		defer close(chunks)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				chunks <- chunk{b[:n], time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range chunks {
		// The wait is the link's latency, not a synchronisation.
		time.Sleep(time.Until(ch.due))
		p.mu.Lock()
		resume := p.resume
		p.mu.Unlock()
		if resume != nil {
			<-resume
		}
		if muted != nil && muted.Load() {
			continue
		}
		if _, err := dst.Write(ch.b); err != nil {
			src.Close()
			for range chunks {
			}
			return
		}
	}
}

// Accepted returns how many connections were made to the proxy so far,
// those it refused included: how often a service tried the store.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Cut drops every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	p.release()
	for conn := range p.conns {
		conn.Close()
	}
	clear(p.conns)
}

// Refuse refuses new connections until Restore; open ones carry on.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
}

// Restore accepts new connections again and ends a hang.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
	p.release()
}

// Hang stops everything from crossing, on the connections open now and on
// those opened later, without closing any, until Restore: a store that is
// hung (SIGSTOPped), not dead.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

// release ends a hang; p.mu must be held.
func (p *Proxy) release() {
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

// Slow makes every chunk take d to cross the proxy, each way, from now on.
func (p *Proxy) Slow(d time.Duration) { p.delay.Store(int64(d)) }

// Mute loses, from now on, everything the store sends on the connections
// open now, as a link that died after the requests went out would: the
// store still gets what the service sends and acts on it, the service
// never hears back. Connections opened later are not muted.
func (p *Proxy) Mute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.conns {
		l.muted.Store(true)
	}
}
