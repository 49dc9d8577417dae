package reactor

import (
	"unsafe"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// Buf is a growable byte buffer for a connection's slow paths (input kept
// between reads, the write queue, a message being reassembled). Its memory
// comes from the loop's node-local pool while the pool has some to give, and
// from the Go heap otherwise (counted in Stats.HeapFallbacks). The zero Buf
// is empty and holds no memory. Loop-thread only.
type Buf struct {
	b []byte          // len = bytes held
	h hugepage.Buffer // the pool buffer behind b; zero for heap memory or none
}

// Bytes returns the bytes held, valid until the next call that changes b.
func (b *Buf) Bytes() []byte { return b.b }

// Len is len(b.Bytes()).
func (b *Buf) Len() int { return len(b.b) }

// SetLen sets the length, which must be within the capacity.
func (b *Buf) SetLen(n int) { b.b = b.b[:n] }

// Grow makes room for n more bytes without another allocation.
func (b *Buf) Grow(l *Loop, n int) {
	need := len(b.b) + n
	if need <= cap(b.b) {
		return
	}
	nb, nh := l.alloc(max(need, 2*cap(b.b), 64))
	nb = append(nb, b.b...) // copy: growing a slow-path buffer
	l.free(b.h)
	b.b, b.h = nb, nh
}

// Append copies p to the end of b.
func (b *Buf) Append(l *Loop, p []byte) {
	b.Grow(l, len(p))
	b.b = append(b.b, p...)
}

// Free gives b's memory back and empties it.
func (b *Buf) Free(l *Loop) {
	l.free(b.h)
	*b = Buf{}
}

// Detach hands b's memory to a new holder and empties b: the returned pool
// buffer (zero for heap memory, which the GC keeps alive for the holder)
// carries the reference b had, and the bytes are the same.
func (b *Buf) Detach() (hugepage.Buffer, []byte) {
	h, p := b.h, b.b
	*b = Buf{}
	return h, p
}

// Share adds a reference to b's pool buffer for another holder and returns
// it (zero for heap memory, which the GC keeps alive for the holder). b keeps
// its own reference until Free; it must not be written again.
func (b *Buf) Share() hugepage.Buffer {
	if !b.h.IsZero() {
		b.h.Retain()
	}
	return b.h
}

// alloc takes n bytes of capacity from the loop's pool, or the Go heap.
func (l *Loop) alloc(n int) ([]byte, hugepage.Buffer) {
	if l.cache != nil {
		if h, err := l.cache.Get(n); err == nil {
			return h.Bytes()[:0], h
		}
	}
	l.stats.heapFallbacks.Add(1)
	return make([]byte, 0, n), hugepage.Buffer{}
}

func (l *Loop) free(h hugepage.Buffer) {
	if !h.IsZero() {
		l.cache.Release(h)
	}
}

// RetainRead lets a handler keep p, a slice of the bytes OnRead was given,
// past the callback without copying: it adds a reference to the loop's read
// buffer, returns it and p's offset in it, and the loop reads into a fresh
// buffer from then on. ok is false when p is not in a pool read buffer (a
// partial frame kept from an earlier read, or heap memory); the caller then
// copies.
func (l *Loop) RetainRead(p []byte) (h hugepage.Buffer, off int, ok bool) {
	if l.rbufH.IsZero() || len(p) == 0 {
		return h, 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(l.rbuf)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if at < base || at+uintptr(len(p)) > base+uintptr(len(l.rbuf)) {
		return h, 0, false
	}
	l.rbufH.Retain()
	l.rbufShared = true
	return l.rbufH, int(at - base), true
}

// newReadBuffer gives the loop a read buffer, dropping the loop's reference
// to the old one (handlers that retained it keep it alive).
func (l *Loop) newReadBuffer() {
	if !l.rbufH.IsZero() {
		if l.rbufShared {
			l.rbufH.Release() // not the last reference: a handler holds it
		} else {
			l.cache.Release(l.rbufH)
		}
	}
	l.rbufShared = false
	b, h := l.alloc(l.e.cfg.ReadBufferSize)
	l.rbuf, l.rbufH = b[:cap(b)], h
}

// freeMemory gives the loop's read buffer and cached slots back to the pool
// when the loop is done (or never ran).
func (l *Loop) freeMemory() {
	l.free(l.rbufH) // the loop's reference; handlers may still hold theirs
	l.rbuf, l.rbufH = nil, hugepage.Buffer{}
	if l.cache != nil {
		l.cache.Flush()
	}
}
