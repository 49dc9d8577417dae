package hugepage

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/hioload-ws/hioload-ws/internal/stack"
)

var (
	// ErrExhausted is returned by Get when every buffer of the size class is
	// in use. Get never blocks and never falls back to the Go heap; the caller
	// decides (drop the read, close the connection, retry later).
	ErrExhausted = errors.New("hugepage: size class exhausted")
	// ErrTooLarge is returned by Get for a size above the largest class, or a
	// negative size.
	ErrTooLarge = errors.New("hugepage: size larger than the largest class")
	// ErrClosed is returned by Get after Close.
	ErrClosed = errors.New("hugepage: pool closed")
	// ErrInUse is returned (wrapped, with the count) by Close while buffers
	// are still out; the arena stays mapped.
	ErrInUse = errors.New("hugepage: buffers still in use")
)

// Class is one slab size class: Count buffers of Size bytes.
type Class struct {
	Size  int // a power of two, at least MinClassSize
	Count int // at least 1
}

const (
	// MinClassSize is the smallest class size: one cache line, so that no two
	// buffers share a line.
	MinClassSize = 64
	// MaxClassSize is the largest class size New accepts.
	MaxClassSize = 1 << 30
	// maxArena bounds one pool's arena: 1 TiB on 64-bit systems, 1 GiB on
	// 32-bit ones.
	maxArena = 1 << (30 + 10*(bits.UintSize/64))
)

// DefaultClasses returns the classes used when Config.Classes is nil: 64 B to
// 64 KiB with 1 MiB each (small frames, control frames, headers), 128 KiB to
// 1 MiB with 4 MiB each (read buffers and write tails), and 2 MiB to 16 MiB
// with 8 or 16 MiB each (reassembled messages): 75 MiB in all.
func DefaultClasses() []Class {
	var cs []Class
	for s := MinClassSize; s <= 64<<10; s <<= 1 {
		cs = append(cs, Class{s, (1 << 20) / s})
	}
	for s := 128 << 10; s <= 1<<20; s <<= 1 {
		cs = append(cs, Class{s, (4 << 20) / s})
	}
	return append(cs, Class{2 << 20, 4}, Class{4 << 20, 2}, Class{8 << 20, 2}, Class{16 << 20, 1})
}

// Config says how to build a Pool.
type Config struct {
	// Node is the NUMA node to bind the arena to; -1 asks for no binding.
	// The zero value binds to node 0, which every machine has.
	Node int
	// Classes are the size classes, smallest first; nil means
	// DefaultClasses().
	Classes []Class
	// NoHugetlb skips the hugetlb reservation even when pages are reserved.
	NoHugetlb bool
	// NoTHP skips MADV_HUGEPAGE, leaving base pages unless the system-wide
	// THP setting is "always".
	NoTHP bool

	noReserve bool // tests: see mapOptions.noReserve
}

// Pool is a set of slab size classes carved from one arena bound to one NUMA
// node. Get and Buffer.Release are lock-free, never block and never allocate;
// any goroutine may call them. A reactor keeps one Pool per node, or one per
// loop when loops should not share free lists.
type Pool struct {
	closed  atomic.Bool
	classes []class
	// byLog maps ceil(log2(size)) to the index of the smallest class that
	// holds size, or -1.
	byLog [64]int8
	max   int

	mu    sync.Mutex // Close only
	mem   []byte     // nil once unmapped
	arena Arena
}

// class is one size class: its slice of the arena, the free list of its slot
// indexes and the per-slot state. Only slot indexes go into the free list, so
// the arena holds no Go pointers.
type class struct {
	size   int
	index  int // in Pool.classes
	huge   int // bytes of mem backed by huge pages when New checked, -1 unknown
	mem    []byte
	free   *stack.Treiber
	slots  []slot
	failed atomic.Uint64 // Gets that found the class exhausted
	pool   *Pool
	debug  []slotDebug // hugepagedebug builds only
}

// slot is the state of one buffer: generation<<32 | references. The
// generation grows on every Get, so a Buffer from an earlier life of the slot
// is recognised as stale.
type slot struct {
	state atomic.Uint64
	cls   *class
	idx   uint32
}

// New maps an arena for cfg's classes on cfg.Node, carves it and returns the
// pool. It prefaults the whole arena (so that a bad binding or a missing huge
// page shows here, not on a loop thread, and so that the page kind can be
// verified): the memory is committed when New returns. See Arena for what was
// obtained; New fails only if no memory at all could be mapped or the node
// does not exist (an error wrapping cnuma.ErrNoNode, naming the node and the
// online nodes).
func New(cfg Config) (*Pool, error) {
	classes := cfg.Classes
	if classes == nil {
		classes = DefaultClasses()
	}
	offsets, size, err := layout(classes)
	if err != nil {
		return nil, err
	}
	if err := checkNode(cfg.Node); err != nil {
		return nil, err
	}
	mem, arena, err := mapArena(roundUp(size, hugeSize), cfg.Node, mapOptions{cfg.NoHugetlb, cfg.NoTHP, cfg.noReserve})
	if err != nil {
		return nil, err
	}
	p := &Pool{mem: mem, arena: arena, classes: make([]class, len(classes))}
	for i := range p.byLog {
		p.byLog[i] = -1
	}
	for i, c := range classes {
		cl := &p.classes[i]
		cl.size = c.Size
		cl.index = i
		cl.mem = mem[offsets[i] : offsets[i]+c.Size*c.Count : offsets[i]+c.Size*c.Count]
		cl.huge = hugeBytes(cl.mem, &p.arena)
		cl.free = stack.NewTreiberFull(c.Count)
		cl.slots = make([]slot, c.Count)
		cl.pool = p
		for j := range cl.slots {
			cl.slots[j].cls = cl
			cl.slots[j].idx = uint32(j)
		}
		debugInit(cl)
		for l := bits.Len(uint(c.Size - 1)); l >= 0 && p.byLog[l] < 0; l-- {
			p.byLog[l] = int8(i)
		}
	}
	p.max = classes[len(classes)-1].Size
	return p, nil
}

// ArenaSize returns the bytes New maps for classes (nil: DefaultClasses):
// the classes laid out and rounded up to whole 2 MiB huge pages. It is what
// one pool takes from the hugetlb reservation, or from the memory limit when
// it gets no huge pages.
func ArenaSize(classes []Class) (int, error) {
	if classes == nil {
		classes = DefaultClasses()
	}
	_, size, err := layout(classes)
	if err != nil {
		return 0, err
	}
	return roundUp(size, hugeSize), nil
}

// layout checks the classes and places them in one arena, each class aligned
// to its size (up to the huge page size), so every buffer is aligned to its
// size and none shares a cache line with another.
func layout(classes []Class) ([]int, int, error) {
	if len(classes) == 0 || len(classes) > 60 {
		return nil, 0, fmt.Errorf("hugepage: %d size classes, want 1 to 60", len(classes))
	}
	offsets := make([]int, len(classes))
	off := 0
	for i, c := range classes {
		switch {
		case c.Size < MinClassSize || c.Size > MaxClassSize || c.Size&(c.Size-1) != 0:
			return nil, 0, fmt.Errorf("hugepage: class %d: size %d is not a power of two in [%d, %d]", i, c.Size, MinClassSize, MaxClassSize)
		case i > 0 && c.Size <= classes[i-1].Size:
			return nil, 0, fmt.Errorf("hugepage: class %d: size %d does not grow on %d", i, c.Size, classes[i-1].Size)
		}
		off = roundUp(off, min(c.Size, hugeSize))
		if c.Count < 1 || uint64(c.Count) > stack.MaxLen || c.Count > (maxArena-off)/c.Size {
			return nil, 0, fmt.Errorf("hugepage: class %d: count %d out of range (arena limit %d bytes)", i, c.Count, maxArena)
		}
		offsets[i] = off
		off += c.Size * c.Count
	}
	return offsets, off, nil
}

// Get returns a buffer of n bytes (len(b.Bytes()) == n) from the smallest
// class that holds n; its capacity is the class size. The bytes are whatever
// the previous holder left: Get does not clear them. The caller owns the
// buffer until its Release; see Buffer for the rules.
//
// Get never blocks and never allocates: it returns ErrExhausted when the
// class is empty, ErrTooLarge when n is above the largest class or negative,
// and ErrClosed after Close. Any goroutine may call it.
func (p *Pool) Get(n int) (Buffer, error) {
	if uint(n) > uint(p.max) {
		return Buffer{}, ErrTooLarge
	}
	return p.classes[p.byLog[log2Ceil(n)]].get(n)
}

// log2Ceil returns the smallest l with 1<<l >= n, for n >= 0.
func log2Ceil(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

// get takes a buffer of n bytes from the shared free list.
func (c *class) get(n int) (Buffer, error) {
	i, ok := c.free.Pop()
	if !ok {
		c.failed.Add(1)
		return Buffer{}, ErrExhausted
	}
	b, ok := c.hand(i, n)
	if !ok {
		c.free.Push(i)
		return Buffer{}, ErrClosed
	}
	return b, nil
}

// hand gives slot i, just taken off a free list, its first reference in a new
// generation. After Close it leaves the slot free and reports false; the
// caller puts it back where it came from.
func (c *class) hand(i uint32, n int) (Buffer, bool) {
	s := &c.slots[i]
	gen := uint32(s.state.Load()>>32) + 1
	s.state.Store(uint64(gen)<<32 | 1)
	// Close stores closed and then scans for references; we store our
	// reference and then load closed. With sequentially consistent atomics one
	// of us sees the other, so Close never unmaps memory handed out here.
	if c.pool.closed.Load() {
		s.state.Store(uint64(gen) << 32)
		return Buffer{}, false
	}
	if debug {
		debugGet(c, i)
	}
	return Buffer{s: s, gen: gen, n: uint32(n)}, true
}

// MaxSize is the size of the largest class: the largest n Get accepts.
func (p *Pool) MaxSize() int { return p.max }

// Node is the node the pool was asked to bind to (-1: none).
func (p *Pool) Node() int { return p.arena.Node }

// Arena describes the memory behind the pool, as verified when it was mapped.
func (p *Pool) Arena() Arena { return p.arena }

// InUse counts buffers that have been handed out and not released for the
// last time. After a shutdown that released everything it is 0; leak checks
// assert that. It scans every slot: call it from stats and tests, not per
// message.
func (p *Pool) InUse() int {
	n := 0
	for i := range p.classes {
		n += p.classes[i].inUse()
	}
	return n
}

func (c *class) inUse() int {
	n := 0
	for i := range c.slots {
		if uint32(c.slots[i].state.Load()) != 0 {
			n++
		}
	}
	return n
}

// Close stops Get (it returns ErrClosed from now on) and unmaps the arena if
// no buffer is in use. Otherwise it returns an error wrapping ErrInUse and
// keeps the memory mapped, since unmapping it under a holder would crash the
// process; release the rest and call Close again. Close after a successful
// Close does nothing.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mem == nil {
		return nil
	}
	p.closed.Store(true)
	if n := p.InUse(); n > 0 {
		return fmt.Errorf("%w: %d buffers on node %d", ErrInUse, n, p.arena.Node)
	}
	if err := unmapArena(p.mem, &p.arena); err != nil {
		return fmt.Errorf("hugepage: close: %w", err)
	}
	// The classes keep their (now dangling) slices: no Buffer can reach them,
	// since Bytes checks the slot state first and every slot is free.
	p.mem = nil
	return nil
}
