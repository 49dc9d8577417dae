package ring

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// SPSC is a bounded queue for exactly one producer goroutine and one consumer
// goroutine at a time. It is Lamport's single-producer single-consumer ring
// (L. Lamport, "Specifying Concurrent Program Modules", ACM TOPLAS 5(2), 1983)
// with each side keeping a private copy of the other side's index, as in
// MCRingBuffer (P. P. C. Lee, T. Bu, G. Chandranmenon, "A Lock-Free,
// Cache-Efficient Multi-Core Synchronization Mechanism for Line-Rate Network
// Traffic Monitoring", IPDPS 2010): the producer rereads the shared head only
// when its cached copy says the ring is full, and the consumer rereads the
// shared tail only when its copy says it is empty, so in steady state each side
// touches the other's cache line once per lap instead of once per value.
//
// The tail store after writing a value and the head store after reading one
// are the release operations that order the value's memory; the race detector
// sees them as happens-before edges. Push and Pop never block and never
// allocate. Calling Push from two goroutines at once (or Pop) is a data race.
type SPSC[T any] struct {
	_ cpu.CacheLinePad
	// Consumer side.
	head       atomic.Uint64
	cachedTail uint64
	_          cpu.CacheLinePad
	// Producer side.
	tail       atomic.Uint64
	cachedHead uint64
	_          cpu.CacheLinePad
	mask       uint64
	slots      []T
}

// NewSPSC returns a queue holding at least capacity values (rounded up to a
// power of two, minimum 2).
func NewSPSC[T any](capacity int) *SPSC[T] {
	n := uint64(2)
	for n < uint64(capacity) {
		n <<= 1
	}
	return &SPSC[T]{mask: n - 1, slots: make([]T, n)}
}

// Cap reports the number of values the queue can hold.
func (q *SPSC[T]) Cap() int { return len(q.slots) }

// Push appends v and reports true, or reports false when the queue is full.
// Only the producer goroutine may call it.
func (q *SPSC[T]) Push(v T) bool {
	t := q.tail.Load() // only we store tail, so this load is never stale
	if t-q.cachedHead == uint64(len(q.slots)) {
		q.cachedHead = q.head.Load()
		if t-q.cachedHead == uint64(len(q.slots)) {
			return false
		}
	}
	q.slots[t&q.mask] = v
	q.tail.Store(t + 1)
	return true
}

// Pop removes the oldest value, or reports false when the queue is empty.
// Only the consumer goroutine may call it.
func (q *SPSC[T]) Pop() (T, bool) {
	var zero T
	h := q.head.Load()
	if h == q.cachedTail {
		q.cachedTail = q.tail.Load()
		if h == q.cachedTail {
			return zero, false
		}
	}
	s := &q.slots[h&q.mask]
	v := *s
	*s = zero // drop references so the GC can reclaim them
	q.head.Store(h + 1)
	return v, true
}

// Len is a racy estimate of the number of queued values, for stats; any
// goroutine may call it.
func (q *SPSC[T]) Len() int {
	n := int64(q.tail.Load()) - int64(q.head.Load())
	if n < 0 {
		return 0
	}
	return int(n)
}
