package reactor

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Admission: every accepted TCP connection is counted against the caps of
// Config (MaxConns, MaxConnsPerPeer, MaxPending, MaxPendingPerPeer)
// before the Handler sees it. One over a cap is closed at once with a
// reset (nothing read, nothing written, counted in Stats.Refused): a
// client that holds connections open without speaking spends its own
// share, not everyone's. A connection is pending until the Handler calls
// Conn.Established (for WebSocket: the upgrade succeeded).
//
// A peer is one client address: an IPv4 address, or an IPv6 /64 (one
// subscriber's prefix; counting single IPv6 addresses would give an
// attacker 2^64 of them). It carries what the address holds: connections,
// pending ones, buffer memory and pool buffers per size class, for the
// admission caps and the memory rule in memory.go. The table is touched
// under a mutex when a connection opens or closes, never per message.

// peer is one client address's share.
type peer struct {
	key     netip.Addr
	conns   int              // open connections (under peerTable.mu)
	list    []*Conn          // those connections, for eviction (under peerTable.mu)
	pending atomic.Int32     // connections not yet Established
	mem     atomic.Int64     // buffer bytes its connections hold (pools included)
	holding atomic.Int32     // its connections holding any
	pool    [32]atomic.Int32 // pool buffers held, by log2 of the class size
}

// peerTable is the engine's peers by address.
type peerTable struct {
	mu      sync.Mutex
	m       map[netip.Addr]*peer
	holding atomic.Int32 // peers holding memory
	// picked holds the connections picked for eviction and not yet gone,
	// with what each held when picked; coming is their sum: memory on its
	// way back, which the memory rule counts as free (under mu; coming is
	// read without it).
	picked map[*Conn]int64
	coming atomic.Int64
	// Scans that find nobody to pick are not repeated within evictEvery
	// of the first (emptyAt) by the same connection (emptyFor, the last),
	// and at most emptyScans of them run in that time (empty counts them;
	// under mu).
	emptyAt  int64
	emptyFor *Conn
	empty    int
}

// peerKey is the address's share key: the IPv4 address, or the /64 of an
// IPv6 one.
func peerKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// admit counts a connection just accepted from addr against the caps and
// returns its peer, or nil when it is refused (counted): the platform then
// closes the socket at once. An admitted connection is opened with the
// peer (Loop.opened), or given back with unadmit if opening fails.
func (l *Loop) admit(addr netip.AddrPort) *peer {
	e := l.e
	cfg := &e.cfg
	if !takeSlot(&e.open, cfg.MaxConns) {
		count(&l.stats.Refused, 1)
		return nil
	}
	if !takeSlot(&e.pending, cfg.MaxPending) {
		e.open.Add(-1)
		count(&l.stats.Refused, 1)
		return nil
	}
	key := peerKey(addr.Addr())
	t := &e.peers
	t.mu.Lock()
	p := t.m[key]
	if p == nil {
		p = &peer{key: key}
		if t.m == nil {
			t.m = map[netip.Addr]*peer{}
		}
		t.m[key] = p
	}
	ok := (cfg.MaxConnsPerPeer <= 0 || p.conns < cfg.MaxConnsPerPeer) &&
		(cfg.MaxPendingPerPeer <= 0 || int(p.pending.Load()) < cfg.MaxPendingPerPeer)
	if ok {
		p.conns++
		p.pending.Add(1)
	} else if p.conns == 0 {
		delete(t.m, key)
	}
	t.mu.Unlock()
	if !ok {
		e.open.Add(-1)
		e.pending.Add(-1)
		count(&l.stats.Refused, 1)
		return nil
	}
	return p
}

// takeSlot adds one to n unless that passes max (0: no limit).
func takeSlot(n *atomic.Int64, max int) bool {
	if n.Add(1) > int64(max) && max > 0 {
		n.Add(-1)
		return false
	}
	return true
}

// unadmit gives back what admit counted, for a connection that never
// opened.
func (l *Loop) unadmit(p *peer) {
	e := l.e
	e.open.Add(-1)
	e.pending.Add(-1)
	p.pending.Add(-1)
	e.peers.mu.Lock()
	if p.conns--; p.conns == 0 {
		delete(e.peers.m, p.key)
	}
	e.peers.mu.Unlock()
}

// join lists c with its peer, for eviction.
func (p *peer) join(t *peerTable, c *Conn) {
	t.mu.Lock()
	c.pidx = int32(len(p.list))
	p.list = append(p.list, c)
	t.mu.Unlock()
}

// leave gives back what c counted: its place in the caps and in its peer.
func (l *Loop) leave(c *Conn) {
	e := l.e
	e.open.Add(-1)
	p := c.peer
	if c.flags&fEstablished == 0 {
		e.pending.Add(-1)
		if p != nil {
			p.pending.Add(-1)
		}
	}
	if p == nil {
		return
	}
	t := &e.peers
	t.mu.Lock()
	t.unpick(c)
	last := len(p.list) - 1
	moved := p.list[last]
	p.list[c.pidx], moved.pidx = moved, c.pidx
	p.list[last] = nil
	p.list = p.list[:last]
	if p.conns--; p.conns == 0 && t.m[p.key] == p {
		delete(t.m, p.key)
	}
	t.mu.Unlock()
}

// Established says that c passed the upper layer's handshake: it stops
// counting as pending (Config.MaxPending, MaxPendingPerPeer). Loop thread.
func (c *Conn) Established() {
	if c.flags&fEstablished != 0 {
		return
	}
	c.flags |= fEstablished
	c.loop.e.pending.Add(-1)
	if c.peer != nil {
		c.peer.pending.Add(-1)
	}
}

// greediest picks connections to evict, the greediest first (the
// connection holding the most, of the address holding the most), until
// they hold over bytes or 16 are picked; spare is never picked. Picked
// connections are kept in picked, so that another shortage passes them
// over, and what they hold counts as coming back (coming) until they
// leave, unpick gives them up or settle says their eviction ran.
//
// A scan that picks nobody is not repeated by the same connection within
// evictEvery (now is loop time), and at most emptyScans such scans run in
// that time: a scan walks every address under the table's lock, and many
// connections asking while nobody can be picked (the memory held outside
// connections) must not make one each. Another connection's scan still
// runs: the one that found nobody may have been the connection alone over
// the budget, which only the others may pick.
func (t *peerTable) greediest(over int64, spare *Conn, now int64) []*Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now-t.emptyAt >= evictEvery {
		t.emptyFor, t.empty = nil, 0
	} else if t.emptyFor == spare || t.empty >= emptyScans {
		return nil
	}
	var picked []*Conn
	taken := map[*peer]int64{}
	for over > 0 && len(picked) < 16 {
		var top *peer
		var topMem int64
		for _, p := range t.m {
			if m := p.mem.Load() - taken[p]; m > topMem {
				top, topMem = p, m
			}
		}
		if top == nil {
			break
		}
		var v *Conn
		var vm int64
		for _, c := range top.list {
			if m := c.mem.Load(); m > vm && c != spare && !t.isPicked(c) {
				v, vm = c, m
			}
		}
		if v == nil {
			taken[top] = top.mem.Load() // nothing left to take there
			continue
		}
		if t.picked == nil {
			t.picked = map[*Conn]int64{}
		}
		t.picked[v] = vm
		t.coming.Add(vm)
		picked = append(picked, v)
		taken[top] += vm
		over -= vm
	}
	if len(picked) == 0 {
		if t.empty == 0 {
			t.emptyAt = now
		}
		t.emptyFor = spare
		t.empty++
	}
	return picked
}

// emptyScans bounds the scans that find nobody to pick within evictEvery.
const emptyScans = 8

// unpick forgets c's pick, if it was picked: it left, or its eviction
// could not be posted (then another shortage may pick it again). Under mu.
func (t *peerTable) unpick(c *Conn) {
	if m, ok := t.picked[c]; ok {
		delete(t.picked, c)
		t.coming.Add(-m)
	}
}

// settle stops counting c's memory as coming back: its eviction ran. It
// stays picked (not to be picked again) until it leaves. Under mu.
func (t *peerTable) settle(c *Conn) {
	if m, ok := t.picked[c]; ok && m != 0 {
		t.picked[c] = 0
		t.coming.Add(-m)
	}
}

// isPicked reports whether c is picked for eviction. Under mu.
func (t *peerTable) isPicked(c *Conn) bool {
	_, ok := t.picked[c]
	return ok
}
