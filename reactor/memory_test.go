package reactor

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memEngine is an engine that is never started, for driving the memory
// rule by hand on its first loop's thread (the test's).
func memEngine(t *testing.T, budget int64) (*Engine, *Loop) {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", MaxHeapBytes: budget, Loops: []LoopSpec{{CPU: 0, Node: -1}}}
	e, err := New(cfg, newEchoHandler())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	l := e.loops[0]
	l.now = time.Now().UnixNano()
	return e, l
}

// memConn is a connection of addr on l, listed with its peer as admit and
// opened would list it.
func memConn(l *Loop, addr string) *Conn {
	p := l.admit(netip.AddrPortFrom(netip.MustParseAddr(addr), 1))
	c := &Conn{loop: l, peer: p}
	p.join(&l.e.peers, c)
	return c
}

// picked reports whether c is picked for eviction.
func picked(e *Engine, c *Conn) bool {
	e.peers.mu.Lock()
	defer e.peers.mu.Unlock()
	return e.peers.isPicked(c)
}

// take grants c need bytes of heap memory if the rule admits them, and
// charges them as heapBuf would.
func take(l *Loop, c *Conn, need int) bool {
	if !l.admitMemory(c, need) {
		return false
	}
	l.e.mem.Add(int64(need))
	l.charge(c, int64(need))
	return true
}

// TestNewcomerNotRefusedWhileGreedyIsEvicted: "the greedy pay, not the
// newcomer", step by step. One address holds 6 MiB of an 8 MiB budget and,
// alone, may go past it; a newcomer's first request over the budget picks
// the greedy connection for eviction, and its next requests, made before
// that eviction has run on the greedy connection's loop, are granted: the
// memory on its way back counts as free. (Before, the greedy connection's
// own request used up the engine's eviction round for 20 ms without
// picking anyone, the newcomer's request in that window picked nobody
// either, and its next one was refused with nothing evicted: the
// newcomer got the 1013 in about 1 run of 10 of TestGreedyGets1013.)
func TestNewcomerNotRefusedWhileGreedyIsEvicted(t *testing.T) {
	e, l := memEngine(t, 8<<20)
	greedy := memConn(l, "127.0.0.2")
	require.True(t, take(l, greedy, 6<<20+512<<10))
	require.True(t, take(l, greedy, 2<<20), "alone, an address may use the overdraft")
	require.False(t, picked(e, greedy), "nobody else to evict")

	good := memConn(l, "127.0.0.1")
	require.True(t, take(l, good, 64<<10), "the newcomer is not greedy")
	require.True(t, picked(e, greedy), "the greedy connection is picked")
	require.EqualValues(t, 8<<20+512<<10, e.peers.coming.Load())
	for range 2 { // the newcomer's next steps, the eviction not yet run
		require.True(t, take(l, good, 2<<20))
	}
	require.Zero(t, l.stats.MemRefused)
	require.False(t, take(l, greedy, 64<<10), "the greedy connection is refused")

	// The eviction is in the loop's inbox; once the greedy connection has
	// gone, its memory is no longer counted as coming back.
	l.charge(greedy, -(8<<20 + 512<<10))
	e.mem.Add(-(8<<20 + 512<<10))
	l.leave(greedy)
	require.Zero(t, e.peers.coming.Load())
	require.False(t, picked(e, greedy))
	l.leave(good)
}

// TestEmptyScanNotRepeated: a scan that finds nobody to pick is not
// repeated for the same connection within evictEvery, but is for another.
func TestEmptyScanNotRepeated(t *testing.T) {
	e, l := memEngine(t, 8<<20)
	a := memConn(l, "127.0.0.2")
	b := memConn(l, "127.0.0.3")
	l.charge(a, 1<<20)
	require.Nil(t, e.peers.greediest(1, a, l.now), "a is the only holder and is spared")
	l.charge(b, 1<<20)
	require.Nil(t, e.peers.greediest(1, a, l.now+1), "not repeated for a so soon")
	require.Equal(t, []*Conn{b}, e.peers.greediest(1, a, l.now+evictEvery))
	require.Equal(t, []*Conn{a}, e.peers.greediest(1, b, l.now+evictEvery), "b's scan is its own")
	require.EqualValues(t, 2<<20, e.peers.coming.Load())
	for _, c := range []*Conn{a, b} {
		l.charge(c, -1<<20)
		l.leave(c)
	}
	require.Zero(t, e.peers.coming.Load())
	runtime.KeepAlive(e)
}

// TestNewcomerPicksTheOneHolder: the one address holding the budget took
// its overdraft alone (nobody else to evict); a newcomer's request that
// would pass the overdraft picks it, and is granted on the memory coming
// back. (Before, the newcomer was refused before any eviction was looked
// for, and the holder kept its memory.)
func TestNewcomerPicksTheOneHolder(t *testing.T) {
	e, l := memEngine(t, 8<<20)
	greedy := memConn(l, "127.0.0.2")
	require.True(t, take(l, greedy, 7<<20+512<<10))
	require.True(t, take(l, greedy, 2<<20), "alone, an address may use the overdraft")
	good := memConn(l, "127.0.0.1")
	require.True(t, take(l, good, 64<<10), "the newcomer is granted")
	require.True(t, picked(e, greedy), "and the holder picked")
	require.True(t, take(l, good, 2<<20))
	require.Zero(t, l.stats.MemRefused)
	l.charge(greedy, -greedy.mem.Load())
	l.leave(greedy)
	l.leave(good)
}

// TestEvictionSettles: once a victim's eviction task has run, its memory
// no longer counts as coming back, though the connection may linger (a
// graceful close waiting for its peer) and stays picked until it leaves.
// (Before, it counted until the connection left: up to LingerTimeout of
// memory counted twice.)
func TestEvictionSettles(t *testing.T) {
	e, l := memEngine(t, 8<<20)
	greedy := memConn(l, "127.0.0.2")
	require.True(t, take(l, greedy, 8<<20))
	good := memConn(l, "127.0.0.1")
	require.True(t, take(l, good, 64<<10))
	require.True(t, picked(e, greedy))
	require.EqualValues(t, 8<<20, e.peers.coming.Load())

	// The eviction task runs on the greedy connection's loop; this
	// connection is not a real socket, so it is marked closed (as the
	// eviction would leave it, lingering) and the task settles it.
	greedy.flags |= fClosed
	l.charge(greedy, -8<<20)
	e.mem.Add(-8 << 20)
	require.True(t, l.drainInbox(16))
	require.Zero(t, e.peers.coming.Load(), "its memory is back: no longer coming")
	require.True(t, picked(e, greedy), "picked until it leaves")
	l.leave(greedy)
	require.False(t, picked(e, greedy))
	l.leave(good)
}

// TestEvictionCeiling: however many evictions are on their way, granted
// memory stays under budget + overdraft + half the budget. Newcomers from
// distinct addresses each take a 2 MiB step of an 8 MiB budget while no
// eviction runs. (Before the cap, each grant's victims raised the next
// request's allowance: 58 steps, 116 MiB, were granted.)
func TestEvictionCeiling(t *testing.T) {
	const budget = 8 << 20
	e, l := memEngine(t, budget)
	var conns []*Conn
	granted := 0
	for i := range 100 {
		c := memConn(l, netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(1 + i%250)}).String())
		conns = append(conns, c)
		l.now += int64(evictEvery) // no scan throttled
		if take(l, c, 2<<20) {
			granted++
		}
		require.LessOrEqual(t, e.mem.Load(), int64(budget+overdraft(budget, 2<<20)+budget/2))
	}
	require.Less(t, granted, 10)
	require.NotZero(t, l.stats.MemRefused)
	for _, c := range conns {
		l.charge(c, -c.mem.Load())
		l.leave(c)
	}
	require.Zero(t, e.peers.coming.Load())
}

// TestEmptyScansBounded: at most emptyScans scans that find nobody to
// pick run within evictEvery, whoever asks.
func TestEmptyScansBounded(t *testing.T) {
	e, l := memEngine(t, 8<<20)
	var conns []*Conn
	for i := range emptyScans + 1 {
		conns = append(conns, memConn(l, netip.AddrFrom4([4]byte{127, 2, 0, byte(1 + i)}).String()))
	}
	for _, c := range conns[:emptyScans] {
		require.Nil(t, e.peers.greediest(1, c, l.now), "nobody holds anything")
	}
	last := conns[emptyScans]
	l.charge(conns[0], 1<<20)
	require.Nil(t, e.peers.greediest(1, last, l.now+1), "the bound is reached")
	require.Equal(t, []*Conn{conns[0]}, e.peers.greediest(1, last, l.now+evictEvery))
	l.charge(conns[0], -1<<20)
	for _, c := range conns {
		l.leave(c)
	}
}

// TestRegionCache: a loop keeps up to regionCache freed regions for reuse
// (it frees the rest), and none once the engine's regions are half of
// maxRegions, so that the caches of many loops never leave live large
// buffers without a region.
func TestRegionCache(t *testing.T) {
	e, l := memEngine(t, 0)
	defer l.trimSpare(true)
	var live []*region
	for range regionCache + 6 {
		r := l.takeRegion(256 << 10)
		require.NotNil(t, r)
		live = append(live, r)
	}
	for _, r := range live {
		l.keepRegion(r)
	}
	require.Len(t, l.regions, regionCache, "regions kept of %d freed", len(live))
	require.EqualValues(t, regionCache, e.regions.Load(), "regions mapped: the cache's, the rest unmapped")

	// Reused, not mapped anew.
	r := l.takeRegion(256 << 10)
	require.Len(t, l.regions, regionCache-1)
	require.EqualValues(t, regionCache, e.regions.Load())

	// Past half of maxRegions over the engine, a freed region is unmapped.
	l.trimSpare(true)
	e.regions.Add(maxRegions / 2)
	l.keepRegion(r)
	e.regions.Add(-maxRegions / 2)
	require.Empty(t, l.regions)
	require.Zero(t, e.regions.Load())
}

// TestBufPrefault: a direct read's target, prefaulted, counts in the
// engine's memory at once and is charged to the connection only as the
// bytes come; freeing the buffer takes both back.
func TestBufPrefault(t *testing.T) {
	e, l := memEngine(t, 0)
	defer l.trimSpare(true)
	c := memConn(l, "192.0.2.7")
	const frame = 1 << 20
	var b Buf
	require.True(t, b.Grow(c, regionStart, frame), "first slice")
	require.NotNil(t, b.r, "a buffer that may grow to %d bytes is a region", frame)
	b.Extend(c, regionStart)
	engine0, conn0 := e.mem.Load(), c.mem.Load()
	b0 := b.r.r.Backed(regionStart) // the first slice's, counted in engine0

	const slice = 64 << 10
	require.True(t, b.Grow(c, slice, frame))
	b.Prefault(c, slice)
	held := int64(b.r.r.Backed(regionStart+slice) - b.r.r.Backed(regionStart))
	require.Positive(t, held)
	require.Equal(t, engine0+held, e.mem.Load(), "the engine counts the prefaulted target")
	require.Equal(t, conn0, c.mem.Load(), "the connection pays nothing before the bytes come")

	b.Extend(c, slice/2)
	require.EqualValues(t, b.r.r.Backed(regionStart+slice/2), c.mem.Load(), "charged as the bytes come")
	require.Equal(t, engine0+held, e.mem.Load(), "counted once")

	b.Free(c)
	require.Zero(t, c.mem.Load())
	l.trimSpare(true)
	require.Equal(t, engine0-int64(b0), e.mem.Load(), "the region unmapped, nothing of it counted")
}
