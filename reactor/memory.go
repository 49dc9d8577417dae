package reactor

import (
	"math/bits"
	"time"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// Where a Buf's memory comes from, and who pays for it.
//
// A buffer takes the smallest fitting buffer of the loop's node pool while
// its client address holds less than a quarter of that size class
// (poolShare), else Go heap memory; one that has reached regionStart bytes
// and may grow past regionMin moves to a region: address space reserved
// once for everything it may hold (a message's announced length, the
// message limit for a fragmented one), backed by memory only as bytes are
// written (hugepage.Region). Nothing is taken ahead of the bytes by more
// than the read about to happen.
//
// Every byte held is charged to its connection and to the connection's
// client address (an IPv4 address or an IPv6 /64): pool buffers by size,
// heap buffers by capacity, regions by the memory their written part holds
// (hugepage.Region.Backed). Heap and region memory is also charged to the
// engine's budget, Config.MaxHeapBytes. When the budget cannot cover a
// request, the rule is "the greedy pay, not the newcomer" (admitMemory):
//
//   - an address is over its fair share when it holds more than the budget
//     divided by the number of addresses holding memory; a connection of
//     such an address is greedy when it holds at least its address's mean;
//   - a greedy connection's request is refused (Stats.MemRefused; the
//     protocol layer closes it with 1013);
//   - anyone else's is granted from an overdraft of an eighth of the
//     budget (or of the request, when one request is more: a region is
//     backed a 2 MiB huge page at a time, more than an eighth of a small
//     budget), and the engine evicts the greediest connections of the
//     address holding the most (Handler.OnEvict with ErrNoMemory), so that
//     the overdraft is paid back once their loops have run the evictions
//     (their memory counts as free meanwhile, up to half the budget: see
//     admitMemory).
//
// Freed regions and heap buffers are kept per loop for reuse (a reused
// region's pages stay backed, so it costs no page faults; a reused heap
// buffer makes no garbage, so a burst of slow-path buffers does not set the
// collector off), within spareLimit, and given back after regionIdle with
// no use; the Go heap's part then goes back to the system through the
// protocol layer (debug.FreeOSMemory).

const (
	// regionStart is the size from which a buffer that may reach regionMin
	// moves to a region: at most this much is copied when it does.
	regionStart = 64 << 10
	// regionMin is the smallest limit worth a region.
	regionMin = 128 << 10
	// regionSlack is reserved past a region's limit, for replies queued
	// behind a message whose buffer became the write queue.
	regionSlack = 64 << 10
	// regionIdle is how long a cached region may wait for reuse before its
	// memory and address space go back to the system.
	regionIdle = time.Second
	// regionCache is the most regions a loop keeps for reuse (spareBytes
	// bounds their memory). A loop reading many large messages side by
	// side frees as many regions as it takes; each one not kept is a
	// fresh region whose every page faults in, which on our (virtual)
	// machines cost 2-3 times the message's copies: at 8, 100 clients
	// echoing 1 MiB messages took 87 faults a message.
	regionCache = 64
	// maxRegions bounds the regions mapped at once over the engine: each is
	// two kernel mappings (vm.max_map_count is 65530 by default). Past it,
	// large buffers come from the Go heap.
	maxRegions = 8192
	// spareBytes bounds the memory a loop keeps backed in cached regions.
	spareBytes = 32 << 20
	// evictEvery spaces out a connection's scans for victims that found
	// none (peerTable.greediest).
	evictEvery = int64(20 * time.Millisecond)
)

// region is a Region with the loop's accounting.
type region struct {
	r      *hugepage.Region
	hw     int   // bytes backed, as Backed counts them: charged to the engine budget
	paid   int   // of hw, bytes charged to the connection owning the region
	idle   int64 // loop time it was cached
	shared bool  // Buf.Share gave another holder a reference: not to be written again
}

// alloc returns a Buf with room for need bytes for c (len 0), the pool,
// region or heap memory chosen as described above; oldCap is the capacity
// being replaced (buffers below regions double).
func (l *Loop) alloc(c *Conn, need, limit, oldCap int) (Buf, bool) {
	if l.wantRegion(need, limit) {
		if r := l.takeRegion(max(limit, 2*need) + regionSlack); r != nil {
			if !l.commitRegion(c, r, need) {
				r.r.Release() // the only reference: back to the cache
				l.keepRegion(r)
				return Buf{}, false
			}
			return Buf{b: r.r.Bytes()[:0], r: r}, true
		}
	}
	size := max(need, 2*oldCap, 64)
	if limit > 0 {
		size = max(need, min(size, limit))
	}
	if l.cache != nil && l.poolShareLeft(c, size) {
		if h, err := l.cache.Get(size); err == nil {
			l.chargePool(c, h.Cap(), 1)
			return Buf{b: h.Bytes()[:0], h: h}, true
		}
	}
	return l.heapBuf(c, size)
}

// heapBuf returns Go heap memory for size bytes: a buffer the loop kept
// from an earlier use when it has one of the size (no garbage, no
// collection), else a new one within the budget.
func (l *Loop) heapBuf(c *Conn, size int) (Buf, bool) {
	k := bits.Len(uint(size - 1))
	if k < len(l.heapSpare) {
		size = 1 << k // sizes kept for reuse are powers of two
		if n := len(l.heapSpare[k]); n > 0 {
			b := l.heapSpare[k][n-1]
			l.heapSpare[k][n-1] = nil
			l.heapSpare[k] = l.heapSpare[k][:n-1]
			l.spareBytes -= size
			l.charge(c, int64(size)) // already in the budget
			return Buf{b: b}, true
		}
	}
	if !l.admitMemory(c, size) {
		return Buf{}, false
	}
	count(&l.stats.HeapFallbacks, 1)
	l.e.mem.Add(int64(size))
	l.charge(c, int64(size))
	return Buf{b: make([]byte, 0, size)}, true
}

// freeHeap takes a heap buffer back: kept for reuse (still in the budget)
// while the loop's spare memory allows, else left to the collector.
func (l *Loop) freeHeap(b []byte) {
	n := cap(b)
	if k := bits.Len(uint(n - 1)); k < len(l.heapSpare) && n == 1<<k && l.spareBytes+n <= l.spareLimit() && !l.closed.Load() && !l.short() {
		l.heapSpare[k] = append(l.heapSpare[k], b[:0])
		l.spareBytes += n
		l.spareSince = l.now
		return
	}
	l.e.mem.Add(-int64(n))
}

// wantRegion: big now and allowed to get bigger (limit 0: unknown, as
// big again).
func (l *Loop) wantRegion(need, limit int) bool {
	if limit <= 0 {
		limit = 2 * need
	}
	return need >= regionStart && limit >= regionMin
}

// takeRegion returns a cached region that holds size bytes, or a new one;
// nil when none can be had (the engine's mapping limit, or mmap failing).
func (l *Loop) takeRegion(size int) *region {
	for i, r := range l.regions {
		if r.r.Cap() >= size {
			last := len(l.regions) - 1
			l.regions[i], l.regions[last] = l.regions[last], nil
			l.regions = l.regions[:last]
			l.spareBytes -= r.hw
			r.r.Retain()
			r.shared = false
			return r
		}
	}
	if l.e.regions.Add(1) > maxRegions {
		l.e.regions.Add(-1)
		return nil
	}
	hr, err := hugepage.Reserve(size, l.spec.Node)
	if err != nil {
		l.e.regions.Add(-1)
		if l.now-l.regionLog >= int64(5*time.Second) {
			l.log.Warn("reactor: large buffers fall back to the Go heap", "loop", l.idx, "err", err)
			l.regionLog = l.now
		}
		return nil
	}
	return &region{r: hr}
}

// commitRegion makes r writable up to need bytes, if the memory that
// writing them would back is admitted (it is charged as it is written:
// paidRegion).
func (l *Loop) commitRegion(c *Conn, r *region, need int) bool {
	if more := r.r.Backed(need) - r.hw; more > 0 && !l.admitMemory(c, more) {
		return false
	}
	if err := r.r.Commit(need); err != nil {
		count(&l.stats.MemRefused, 1)
		return false
	}
	return true
}

// paidRegion charges c for the memory r's first n bytes hold, and the
// engine for memory newly backed.
func (l *Loop) paidRegion(c *Conn, r *region, n int) {
	b := r.r.Backed(n)
	if b > r.paid {
		l.charge(c, int64(b-r.paid))
		r.paid = b
	}
	l.heldRegion(r, n)
}

// heldRegion counts in the engine the memory r's first n bytes hold, once
// backed (written, or prefaulted ahead of a read).
func (l *Loop) heldRegion(r *region, n int) {
	if b := r.r.Backed(n); b > r.hw {
		l.e.mem.Add(int64(b - r.hw))
		r.hw = b
	}
}

// freeBuf gives b's memory back from c's account.
func (l *Loop) freeBuf(c *Conn, b *Buf) {
	switch {
	case !b.h.IsZero():
		l.chargePool(c, b.h.Cap(), -1)
		l.cache.Release(b.h)
	case b.r != nil:
		l.charge(c, -int64(b.r.paid))
		b.r.paid = 0
		if b.r.r.Release() {
			l.keepRegion(b.r)
		} else {
			l.leaveRegion(b.r) // another holder (Event.Retain) has it now
		}
	case cap(b.b) > 0:
		l.charge(c, -int64(cap(b.b)))
		l.freeHeap(b.b)
	}
}

// detachBuf takes b's memory off c's account and the engine's budget: a
// new holder owns it (with b's reference).
func (l *Loop) detachBuf(c *Conn, b *Buf) {
	switch {
	case !b.h.IsZero():
		l.chargePool(c, b.h.Cap(), -1)
	case b.r != nil:
		l.charge(c, -int64(b.r.paid))
		l.leaveRegion(b.r)
	case cap(b.b) > 0:
		l.charge(c, -int64(cap(b.b)))
		l.e.mem.Add(-int64(cap(b.b)))
	}
}

// leaveRegion forgets a region another holder keeps: it leaves the budget
// and the engine's count, and that holder frees it.
func (l *Loop) leaveRegion(r *region) {
	l.e.mem.Add(-int64(r.hw))
	l.e.regions.Add(-1)
}

// keepRegion caches a region nobody holds any more, or frees it when the
// cache is full, or when the engine's regions are half of maxRegions (the
// caches of many loops must not leave live large buffers to the heap).
func (l *Loop) keepRegion(r *region) {
	if len(l.regions) >= regionCache || l.spareBytes+r.hw > l.spareLimit() || l.closed.Load() || l.short() ||
		l.e.regions.Load() > maxRegions/2 {
		l.dropRegion(r)
		return
	}
	r.idle = l.now
	l.regions = append(l.regions, r)
	l.spareBytes += r.hw
}

// dropRegion frees a region only the loop holds.
func (l *Loop) dropRegion(r *region) {
	l.e.mem.Add(-int64(r.hw))
	l.e.regions.Add(-1)
	if err := r.r.Free(); err != nil {
		l.log.Error("reactor: free region", "loop", l.idx, "err", err)
	}
}

// trimSpare frees the cached regions idle for regionIdle (all of them when
// all is set): their memory and address space go back to the system; and
// the heap buffers kept for reuse once none was taken for regionIdle.
func (l *Loop) trimSpare(all bool) {
	if all || l.now-l.spareSince >= int64(regionIdle) {
		for k := range l.heapSpare {
			for _, b := range l.heapSpare[k] {
				l.spareBytes -= cap(b)
				l.e.mem.Add(-int64(cap(b)))
			}
			clear(l.heapSpare[k])
			l.heapSpare[k] = l.heapSpare[k][:0]
		}
	}
	kept := l.regions[:0]
	for _, r := range l.regions {
		if all || l.now-r.idle >= int64(regionIdle) {
			l.spareBytes -= r.hw
			l.dropRegion(r)
			continue
		}
		kept = append(kept, r)
	}
	clear(l.regions[len(kept):])
	l.regions = kept
}

// short reports whether the budget is nearly spent (seven eighths): then
// freed memory goes back at once instead of being kept for reuse, where
// the other loops could not have it.
func (l *Loop) short() bool {
	m := l.e.cfg.MaxHeapBytes
	return m > 0 && l.e.mem.Load() > m-m/8
}

// spareLimit is how many bytes the loop may keep for reuse (cached regions'
// backed memory, heap buffers): spareBytes, or a quarter of the budget when
// that is smaller.
func (l *Loop) spareLimit() int {
	if m := l.e.cfg.MaxHeapBytes; m > 0 && int(m/4) < spareBytes {
		return int(m / 4)
	}
	return spareBytes
}

// allocLoop takes memory the loop cannot do without (its read buffer):
// from the pool, else the heap, outside every budget's limit (but counted
// in the engine's).
func (l *Loop) allocLoop(n int) ([]byte, hugepage.Buffer) {
	if l.cache != nil {
		if h, err := l.cache.Get(n); err == nil {
			return h.Bytes()[:0], h
		}
	}
	count(&l.stats.HeapFallbacks, 1)
	l.e.mem.Add(int64(n))
	return make([]byte, 0, n), hugepage.Buffer{}
}

// freeLoop gives back what allocLoop took.
func (l *Loop) freeLoop(b []byte, h hugepage.Buffer) {
	switch {
	case !h.IsZero():
		l.cache.Release(h)
	case cap(b) > 0:
		l.e.mem.Add(-int64(cap(b)))
	}
}

// freeMemory gives the loop's read buffer, cached regions and cached pool
// slots back when the loop is done (or never ran).
func (l *Loop) freeMemory() {
	if l.rbuf != nil {
		l.freeLoop(l.rbuf, l.rbufH) // the loop's reference; handlers may still hold theirs
	}
	l.rbuf, l.rbufH = nil, hugepage.Buffer{}
	l.trimSpare(true)
	if l.cache != nil {
		l.cache.Flush()
	}
}

// charge adds delta bytes to what c and its address hold, keeping the
// counts of holders the fair share is computed from.
func (l *Loop) charge(c *Conn, delta int64) {
	if delta == 0 {
		return
	}
	now := c.mem.Add(delta)
	p := c.peer
	if p == nil {
		return
	}
	switch was := now - delta; {
	case was <= 0 && now > 0:
		p.holding.Add(1)
	case was > 0 && now <= 0:
		p.holding.Add(-1)
	}
	pnow := p.mem.Add(delta)
	switch was := pnow - delta; {
	case was <= 0 && pnow > 0:
		l.e.peers.holding.Add(1)
	case was > 0 && pnow <= 0:
		l.e.peers.holding.Add(-1)
	}
}

// chargePool charges (n = 1) or credits (n = -1) a pool buffer of size
// bytes to c: its bytes, and its address's count in the size class.
func (l *Loop) chargePool(c *Conn, size, n int) {
	l.charge(c, int64(n*size))
	if c.peer != nil {
		c.peer.pool[bits.Len(uint(size-1))].Add(int32(n))
	}
}

// poolShareLeft reports whether c's address holds less than its share of
// the pool class a buffer of size bytes comes from: a quarter of the
// class, and at least one buffer. Past it the address's buffers of that
// size come from the heap budget, where the greedy rule applies, and the
// pool stays for everyone else.
func (l *Loop) poolShareLeft(c *Conn, size int) bool {
	if c.peer == nil || size > l.poolMax {
		return true
	}
	k := l.classOf[bits.Len(uint(size-1))]
	return int(c.peer.pool[k].Load()) < max(1, int(l.classCount[k])/4)
}

// admitMemory decides whether c may take need more bytes of budgeted
// memory (see the rule above). It does not charge them. Memory held by
// connections already picked for eviction counts as free, up to half the
// budget: it comes back once their loops have run the evictions, and a
// request made in the meantime must not be refused for it; the cap keeps
// a ceiling (budget + overdraft + half the budget, passed by at most one
// step per loop: loops check at once and charge later) however many
// evictions are on their way.
func (l *Loop) admitMemory(c *Conn, need int) bool {
	e := l.e
	max := e.cfg.MaxHeapBytes
	if max <= 0 || e.mem.Load()+int64(need) <= max {
		return true
	}
	l.trimSpare(true) // what the loop keeps for reuse goes first
	if e.mem.Load()+int64(need) <= max {
		return true
	}
	if e.greedy(c) {
		count(&l.stats.MemRefused, 1)
		return false
	}
	// Pick the greedy first, then judge: a request past the overdraft is
	// granted when the memory on its way back covers it (the one holder
	// of the budget, over it alone, is picked by the next to ask).
	e.evictGreedy(l.now, c, need)
	if coming := min(e.peers.coming.Load(), max/2); e.mem.Load()-coming+int64(need) > max+overdraft(max, need) {
		count(&l.stats.MemRefused, 1)
		return false
	}
	return true
}

// overdraft is how far past the budget a request of need bytes from a
// connection that is not greedy may go while the greedy are evicted: an
// eighth of the budget, or the request itself when it is larger (one
// huge page of a region, against a budget of a few MiB), so that the
// newcomer is never the one refused for the size of its step.
func overdraft(budget int64, need int) int64 { return max(budget/8, int64(need)) }

// greedy reports whether c holds more than its share (see above).
func (e *Engine) greedy(c *Conn) bool {
	holders := max(int64(e.peers.holding.Load()), 1)
	p := c.peer
	if p == nil {
		return c.mem.Load()*holders > e.cfg.MaxHeapBytes
	}
	pm := p.mem.Load()
	if pm*holders <= e.cfg.MaxHeapBytes {
		return false
	}
	return c.mem.Load()*max(int64(p.holding.Load()), 1) >= pm
}

// evictGreedy picks connections to evict until what they hold covers what
// the engine would be over its budget after granting need bytes (less the
// memory of those already picked, and with a sixteenth of the budget to
// spare): the greediest connection of the address holding the most, then
// again. spare (the connection asking) is not picked. Each victim's loop
// evicts it (Handler.OnEvict, then close).
func (e *Engine) evictGreedy(now int64, spare *Conn, need int) {
	t := &e.peers
	over := e.mem.Load() + int64(need) - t.coming.Load() - e.cfg.MaxHeapBytes + e.cfg.MaxHeapBytes/16
	if over <= 0 {
		return
	}
	for _, v := range t.greediest(over, spare, now) {
		gen := v.gen
		if v.loop.Post(Task{Fn: func() {
			if v.gen == gen && v.flags&fClosed == 0 {
				v.evict(ErrNoMemory)
			}
			// What it held is back (or it lingers, closing, with what its
			// close left queued): no longer counted as coming.
			t.mu.Lock()
			t.settle(v)
			t.mu.Unlock()
		}}) != nil {
			t.mu.Lock()
			t.unpick(v) // the loop is full or gone: another shortage may pick it
			t.mu.Unlock()
		}
	}
}
