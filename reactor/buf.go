package reactor

import (
	"unsafe"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// Buf is a growable byte buffer for a connection's slow paths (input kept
// between reads, the write queue, a message being reassembled). Its memory
// is paid for in bytes held, charged to the connection that owns it, to the
// connection's client address and, beyond the pools, to the engine's
// budget (Config.MaxHeapBytes); see memory.go for where it comes from and
// who is refused when it runs out. The zero Buf is empty and holds no
// memory. Loop-thread only; every method that may take or give memory
// names the owning connection.
//
// Growing never runs ahead of the bytes: Grow makes room for bytes that
// are about to be written, and a large buffer is a region (address space
// for the whole message) that is charged only as Extend or Append fill it
// (Prefault backs a read's target just before the read: the engine counts
// those pages at once, the connection as its bytes come).
type Buf struct {
	b []byte          // len = bytes held
	h hugepage.Buffer // the pool buffer behind b, if any
	r *region         // the region behind b, if any (else heap memory)
}

// Bytes returns the bytes held, valid until the next call that changes b.
func (b *Buf) Bytes() []byte { return b.b }

// Len is len(b.Bytes()).
func (b *Buf) Len() int { return len(b.b) }

// Cap is how many bytes b holds without growing.
func (b *Buf) Cap() int { return cap(b.b) }

// Truncate shortens b to n bytes (n <= Len). The memory stays b's.
func (b *Buf) Truncate(n int) { b.b = b.b[:n] }

// Grow makes room for n more bytes: afterwards Spare(n) may be written and
// Extend(c, n) or Append of n bytes needs no more memory. limit is the
// largest b may grow to in its current use (a message's announced length,
// or Config's message limit for a fragmented one; 0: unknown), so that a
// buffer that outgrows the pools is reserved once for all of it instead
// of being regrown and copied. Moving to a larger buffer copies the bytes
// held (counted in Stats.CopiedGrow). Grow reports false, changing
// nothing, when the memory is refused (see Loop.admitMemory): the caller
// refuses the work that needed it.
func (b *Buf) Grow(c *Conn, n, limit int) bool {
	need := len(b.b) + n
	l := c.loop
	switch {
	case b.r != nil && need <= cap(b.b):
		return l.commitRegion(c, b.r, need) // the reservation holds it: no move
	case need <= cap(b.b):
		return true
	}
	nb, ok := l.alloc(c, need, max(limit, need), cap(b.b))
	if !ok {
		return false
	}
	if len(b.b) > 0 {
		copy(nb.b[:len(b.b)], b.b) // copy: growing a slow-path buffer
		count(&l.stats.CopiedGrow, uint64(len(b.b)))
	}
	nb.b = nb.b[:len(b.b)]
	b.Free(c)
	*b = nb
	return true
}

// Spare returns the n bytes after the ones held, for a read to fill; Grow
// must have made room for them. Extend then takes them in.
func (b *Buf) Spare(n int) []byte { return b.b[len(b.b) : len(b.b)+n] }

// Prefault backs the memory of the n bytes after the ones held before a
// read fills them, where b is a region: in one system call instead of a
// page fault per page (hugepage.Region.Prefault). Grow must have made room
// for them. The engine counts those pages from here, whether or not the
// bytes come; c is charged as they do (Extend). A direct read calls it for
// its target, which is bounded by the read buffer and by what the message
// has brought so far: a sender that stops holds at most twice what it sent,
// the bound Backed's huge pages already allow.
func (b *Buf) Prefault(c *Conn, n int) {
	if b.r == nil || b.r.r.Prefault(len(b.b)+n) != nil {
		return // nothing to do, or a hint the kernel did not take: the read faults them in
	}
	c.loop.heldRegion(b.r, len(b.b)+n)
}

// Extend takes in n bytes written into Spare.
func (b *Buf) Extend(c *Conn, n int) {
	b.b = b.b[:len(b.b)+n]
	if b.r != nil {
		c.loop.paidRegion(c, b.r, len(b.b))
	}
}

// Append copies p to the end of b; false as for Grow, with limit 0. The
// caller counts the copy under its own name.
func (b *Buf) Append(c *Conn, p []byte, limit int) bool {
	if !b.Grow(c, len(p), limit) {
		return false
	}
	copy(b.Spare(len(p)), p)
	b.Extend(c, len(p))
	return true
}

// Free gives b's memory back and empties it.
func (b *Buf) Free(c *Conn) {
	c.loop.freeBuf(c, b)
	*b = Buf{}
}

// Detach hands b's memory to a new holder and empties b: the returned
// pool buffer or region carries the reference b had (both zero for heap
// memory, which the GC keeps alive for the holder), and the bytes are the
// same. The memory leaves c's account and the engine's budget.
func (b *Buf) Detach(c *Conn) (hugepage.Buffer, *hugepage.Region, []byte) {
	h, p := b.h, b.b
	var r *hugepage.Region
	if b.r != nil {
		r = b.r.r
	}
	c.loop.detachBuf(c, b)
	*b = Buf{}
	return h, r, p
}

// Share adds a reference to b's pool buffer or region for another holder
// and returns it (both zero for heap memory, which the GC keeps alive for
// the holder). b keeps its own reference until Free and must not be
// written again.
func (b *Buf) Share() (hugepage.Buffer, *hugepage.Region) {
	switch {
	case !b.h.IsZero():
		b.h.Retain()
		return b.h, nil
	case b.r != nil:
		b.r.shared = true
		b.r.r.Retain()
		return hugepage.Buffer{}, b.r.r
	}
	return hugepage.Buffer{}, nil
}

// contains reports whether p lies inside b's memory (its whole capacity).
func (b *Buf) contains(p []byte) bool {
	return len(p) > 0 && cap(b.b) > 0 && inside(p, b.b[:cap(b.b)])
}

// inside reports whether p lies within mem.
func inside(p, mem []byte) bool {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return at >= base && at+uintptr(len(p)) <= base+uintptr(len(mem))
}
