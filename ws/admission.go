package ws

import (
	"net"
	"net/netip"
	"strings"
	"sync"
)

// ipKey is a connection's entry in the per-address count.
type ipKey struct {
	addr netip.Addr
	over bool // past MaxConnsPerIP when it connected
}

// perIPCounter counts connections per client address for MaxConnsPerIP. It
// is touched only when a connection opens or closes, never per message, so
// a mutex is the simple and right tool.
type perIPCounter struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

func (p *perIPCounter) add(a net.Addr) *ipKey {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	k := &ipKey{addr: ip.Unmap()}
	p.mu.Lock()
	if p.n == nil {
		p.n = map[netip.Addr]int{}
	}
	p.n[k.addr]++
	k.over = p.n[k.addr] > p.max
	p.mu.Unlock()
	return k
}

func (p *perIPCounter) remove(k *ipKey) {
	p.mu.Lock()
	if p.n[k.addr]--; p.n[k.addr] <= 0 {
		delete(p.n, k.addr)
	}
	p.mu.Unlock()
}

// originAllowed reports whether a browser at origin may connect
// (AllowedOrigins, compared case-insensitively).
func (s *Server) originAllowed(origin []byte) bool {
	return s.origins == nil || s.origins[strings.ToLower(string(origin))]
}
