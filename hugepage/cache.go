package hugepage

// cacheMax is the most free slots a Cache keeps per class.
const cacheMax = 16

// Cache is a private front of a Pool for one goroutine, typically a reactor
// loop pinned to a CPU: it keeps a few free slots of each class, so that the
// loop's own Get and Release touch no shared free list, only the buffer's
// state word. Measured in docs/MEMORY.md: at 64 KiB it took 8 goroutines on
// 2 CPUs from 69-99 ns per Get+Release on one shared free list to 5-11 ns,
// and one goroutine from 12.5 to 9.8 ns.
//
// A Cache is not safe for concurrent use: only its goroutine may call its
// methods. Buffers from Cache.Get are ordinary Buffers: any goroutine may
// Release them with Buffer.Release (the slot then goes to the shared free
// list), and the loop may give back any Buffer of the same pool through
// Cache.Release. Slots held by a Cache count as free, not in use, so InUse
// and Close do not wait for them; call Flush when the loop stops so that
// other loops can have them.
type Cache struct {
	p       *Pool
	classes []cacheClass
}

type cacheClass struct {
	max  int // min(cacheMax, class count / 8): classes of a few huge buffers are not hoarded
	n    int
	free [cacheMax]uint32
}

// NewCache returns an empty cache for p. It allocates; call it once per loop.
func (p *Pool) NewCache() *Cache {
	c := &Cache{p: p, classes: make([]cacheClass, len(p.classes))}
	for i := range c.classes {
		c.classes[i].max = min(cacheMax, len(p.classes[i].slots)/8)
	}
	return c
}

// Get is Pool.Get through the cache: same results, same lifetime rules, no
// allocation; it refills from the shared free list when its own is empty.
func (c *Cache) Get(n int) (Buffer, error) {
	p := c.p
	if uint(n) > uint(p.max) {
		return Buffer{}, ErrTooLarge
	}
	ci := p.byLog[log2Ceil(n)]
	cc := &c.classes[ci]
	cl := &p.classes[ci]
	if cc.n == 0 {
		// Refill half, so a loop alternating Get and Release stays local.
		for cc.n < cc.max/2 {
			i, ok := cl.free.Pop()
			if !ok {
				break
			}
			cc.free[cc.n] = i
			cc.n++
		}
		if cc.n == 0 {
			return cl.get(n) // uncached class, or the shared list is empty too
		}
	}
	cc.n--
	i := cc.free[cc.n]
	b, ok := cl.hand(i, n)
	if !ok {
		cc.free[cc.n] = i
		cc.n++
		return Buffer{}, ErrClosed
	}
	return b, nil
}

// Release is Buffer.Release, except that a slot freed by the last reference
// stays in this cache (up to its size) instead of going to the shared list.
func (c *Cache) Release(b Buffer) {
	for {
		old := b.load("Release")
		if debug && uint32(old) == 1 {
			debugPut(b.s.cls, b.s.idx) // as in Buffer.Release
		}
		if !b.s.state.CompareAndSwap(old, old-1) {
			continue
		}
		if uint32(old) != 1 {
			return
		}
		cl := b.s.cls
		if cl.pool != c.p || c.classes[cl.index].max == 0 {
			cl.free.Push(b.s.idx) // another pool's buffer, or an uncached class
			return
		}
		cc := &c.classes[cl.index]
		if cc.n == cc.max {
			// Full: hand half to the shared list for other loops.
			for cc.n > cc.max/2 {
				cc.n--
				cl.free.Push(cc.free[cc.n])
			}
		}
		cc.free[cc.n] = b.s.idx
		cc.n++
		return
	}
}

// Flush gives every cached slot back to the shared free lists.
func (c *Cache) Flush() {
	for ci := range c.classes {
		cc := &c.classes[ci]
		for cc.n > 0 {
			cc.n--
			c.p.classes[ci].free.Push(cc.free[cc.n])
		}
	}
}
