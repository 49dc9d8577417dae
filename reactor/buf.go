package reactor

import (
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

// Grow makes room for n more bytes. It reports false, changing nothing,
// when neither the pool nor the heap budget (Config.MaxHeapBytes) has the
// memory: the caller refuses the work that needed it.
func (b *Buf) Grow(l *Loop, n int) bool {
	need := len(b.b) + n
	if need <= cap(b.b) {
		return true
	}
	nb, nh, ok := l.alloc(max(need, 2*cap(b.b), 64), false)
	if !ok {
		return false
	}
	nb = append(nb, b.b...) // copy: growing a slow-path buffer
	l.free(b.b, b.h)
	b.b, b.h = nb, nh
	return true
}

// Append copies p to the end of b; false as for Grow.
func (b *Buf) Append(l *Loop, p []byte) bool {
	if !b.Grow(l, len(p)) {
		return false
	}
	b.b = append(b.b, p...)
	return true
}

// Free gives b's memory back and empties it.
func (b *Buf) Free(l *Loop) {
	l.free(b.b, b.h)
	*b = Buf{}
}

// Detach hands b's memory to a new holder and empties b: the returned pool
// buffer (zero for heap memory, which the GC keeps alive for the holder and
// which leaves the heap budget) carries the reference b had, and the bytes
// are the same.
func (b *Buf) Detach(l *Loop) (hugepage.Buffer, []byte) {
	h, p := b.h, b.b
	if h.IsZero() && cap(p) > 0 {
		l.e.heapBytes.Add(-int64(cap(p)))
	}
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

// alloc takes n bytes of capacity from the loop's pool, or else from the
// Go heap within Config.MaxHeapBytes (over all loops); force ignores that
// budget, for memory the loop cannot do without (its read buffer).
func (l *Loop) alloc(n int, force bool) ([]byte, hugepage.Buffer, bool) {
	if l.cache != nil {
		if h, err := l.cache.Get(n); err == nil {
			return h.Bytes()[:0], h, true
		}
	}
	for i, b := range l.spare {
		if cap(b) >= n && cap(b) <= 4*n {
			last := len(l.spare) - 1
			l.spare[i], l.spare[last] = l.spare[last], nil
			l.spare = l.spare[:last]
			l.spareBytes -= cap(b)
			return b[:0], hugepage.Buffer{}, true // still counted in heapBytes
		}
	}
	e := l.e
	if total := e.heapBytes.Add(int64(n)); !force && e.cfg.MaxHeapBytes > 0 && total > e.cfg.MaxHeapBytes {
		e.heapBytes.Add(-int64(n))
		count(&l.stats.MemRefused, 1)
		return nil, hugepage.Buffer{}, false
	}
	count(&l.stats.HeapFallbacks, 1)
	return make([]byte, 0, n), hugepage.Buffer{}, true
}

// Heap buffers a loop keeps for reuse once its pool runs short of large
// ones: fresh heap memory costs zeroing and GC work per message.
const (
	spareMin   = 64 << 10 // smaller buffers are left to the GC
	spareBytes = 32 << 20 // at most this much kept per loop
)

func (l *Loop) free(b []byte, h hugepage.Buffer) {
	switch {
	case !h.IsZero():
		l.cache.Release(h)
	case cap(b) >= spareMin && l.spareBytes+cap(b) <= l.spareLimit() && !l.closed.Load():
		l.spare = append(l.spare, b[:0]) // kept, and still counted in heapBytes
		l.spareBytes += cap(b)
	case cap(b) > 0:
		l.e.heapBytes.Add(-int64(cap(b)))
	}
}

// spareLimit is how many heap bytes the loop may keep for reuse: spareBytes,
// or a quarter of the heap budget when that is smaller.
func (l *Loop) spareLimit() int {
	if m := l.e.cfg.MaxHeapBytes; m > 0 && int(m/4) < spareBytes {
		return int(m / 4)
	}
	return spareBytes
}

// dropSpare lets the GC have the kept heap buffers.
func (l *Loop) dropSpare() {
	l.e.heapBytes.Add(-int64(l.spareBytes))
	clear(l.spare)
	l.spare, l.spareBytes = nil, 0
}

// freeMemory gives the loop's read buffer and cached slots back to the pool
// when the loop is done (or never ran).
func (l *Loop) freeMemory() {
	defer l.dropSpare()
	if l.rbuf != nil {
		l.free(l.rbuf, l.rbufH) // the loop's reference; handlers may still hold theirs
	}
	l.rbuf, l.rbufH = nil, hugepage.Buffer{}
	if l.cache != nil {
		l.cache.Flush()
	}
}
