package hugepage

// Buffer is a view of one slab buffer: a small value (copy it freely) that
// names a slot and the generation of the slot it was handed out in.
//
// Lifetime: the bytes from Bytes belong to the holder from Get until the last
// Release; afterwards the pool hands them to the next Get, so neither the
// Buffer nor any slice taken from it may be used. Retain adds a reference so
// that a second holder (a write queue keeping an unsent tail, a message being
// reassembled) can outlive the first; every Retain needs its own Release.
//
// Goroutines: Bytes, Retain and Release may be called from any goroutine; the
// reference count is atomic. The bytes themselves are not synchronised:
// handing a Buffer to another goroutine needs the usual happens-before edge
// (a channel send, a ring push).
//
// Misuse is caught: Bytes, Retain or Release on a Buffer whose references are
// all gone (a double Release, a use after Release, a view from an earlier life
// of the slot) panics in every build, because carrying on would hand one
// buffer to two owners. Builds with -tags hugepagedebug also record who got
// each buffer, fill released buffers with a poison byte and panic on Get if a
// released buffer was written after its Release through a slice kept from
// Bytes, naming the holder.
type Buffer struct {
	s   *slot
	gen uint32
	n   uint32
}

// Bytes returns the buffer's bytes: len is the size asked of Get, cap the
// class size. Valid until the last Release. Does not allocate.
func (b Buffer) Bytes() []byte {
	c := b.live("Bytes")
	off := int(b.s.idx) * c.size
	return c.mem[off : off+int(b.n) : off+c.size]
}

// Len is len(b.Bytes()).
func (b Buffer) Len() int { return int(b.n) }

// Cap is the size of the buffer's class, 0 for the zero Buffer.
func (b Buffer) Cap() int {
	if b.s == nil {
		return 0
	}
	return b.s.cls.size
}

// IsZero reports whether b is the zero Buffer (what Get returns with an error).
func (b Buffer) IsZero() bool { return b.s == nil }

// Resize returns a view of the same buffer and reference with length n,
// which must be in [0, Cap()]. The reference is shared: release one of the
// two views, not both.
func (b Buffer) Resize(n int) Buffer {
	c := b.live("Resize")
	if uint(n) > uint(c.size) {
		panic("hugepage: Resize beyond the class size")
	}
	b.n = uint32(n)
	return b
}

// Retain adds a reference: the buffer stays out of the pool until one more
// Release. Call it before handing the buffer to a second holder.
func (b Buffer) Retain() {
	for {
		old := b.load("Retain")
		if b.s.state.CompareAndSwap(old, old+1) {
			return
		}
	}
}

// Release drops a reference; the last one gives the buffer back to its pool.
// After that neither b nor its bytes may be used. A Release without a
// matching Get or Retain panics. Does not allocate or block.
func (b Buffer) Release() {
	for {
		old := b.load("Release")
		if debug && uint32(old) == 1 {
			// Poison while the reference still keeps Close from unmapping.
			debugPut(b.s.cls, b.s.idx)
		}
		if b.s.state.CompareAndSwap(old, old-1) {
			if uint32(old) == 1 {
				b.s.cls.free.Push(b.s.idx)
			}
			return
		}
	}
}

// load returns the slot state after checking that b still holds a reference.
func (b Buffer) load(op string) uint64 {
	if b.s == nil {
		panic("hugepage: " + op + " on a zero Buffer")
	}
	st := b.s.state.Load()
	if uint32(st>>32) != b.gen || uint32(st) == 0 {
		misuse(b, op, st)
	}
	return st
}

// live is load for the read-only methods, returning the class.
func (b Buffer) live(op string) *class {
	b.load(op)
	return b.s.cls
}

// misuse panics with what is known about a stale Buffer.
func misuse(b Buffer, op string, st uint64) {
	what := "after its last Release (double Release or use after Release)"
	if uint32(st>>32) != b.gen {
		what = "from an earlier life of its slot (use after Release; the slot was reused)"
	}
	panic("hugepage: " + op + " on a Buffer " + what + debugHolder(b.s))
}
