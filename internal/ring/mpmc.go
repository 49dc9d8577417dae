package ring

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

type slot[T any] struct {
	seq atomic.Uint64
	val T
}

// MPMC is a bounded queue safe for any number of producers and consumers:
// Vyukov's algorithm, described in the package doc. Push and Pop never block
// and never allocate.
type MPMC[T any] struct {
	_     cpu.CacheLinePad
	tail  atomic.Uint64
	_     cpu.CacheLinePad
	head  atomic.Uint64
	_     cpu.CacheLinePad
	mask  uint64
	slots []slot[T]
}

// NewMPMC returns a queue holding at least capacity values (rounded up to a
// power of two, minimum 2).
func NewMPMC[T any](capacity int) *MPMC[T] {
	n := uint64(2)
	for n < uint64(capacity) {
		n <<= 1
	}
	q := &MPMC[T]{mask: n - 1, slots: make([]slot[T], n)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// Cap reports the number of values the queue can hold.
func (q *MPMC[T]) Cap() int { return len(q.slots) }

// Push appends v and reports true, or reports false when the queue is full.
func (q *MPMC[T]) Push(v T) bool {
	for {
		pos := q.tail.Load()
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		switch diff := int64(seq) - int64(pos); {
		case diff == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				s.seq.Store(pos + 1)
				return true
			}
		case diff < 0:
			return false // full: the slot still holds last lap's value
		}
		// diff > 0: another producer took pos; reload.
	}
}

// Pop removes the oldest value, or reports false when the queue is empty.
func (q *MPMC[T]) Pop() (T, bool) {
	var zero T
	for {
		pos := q.head.Load()
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		switch diff := int64(seq) - int64(pos+1); {
		case diff == 0:
			if q.head.CompareAndSwap(pos, pos+1) {
				v := s.val
				s.val = zero // drop references so the GC can reclaim them
				s.seq.Store(pos + q.mask + 1)
				return v, true
			}
		case diff < 0:
			return zero, false // empty
		}
	}
}

// Len is a racy estimate of the number of queued values, for stats.
func (q *MPMC[T]) Len() int {
	n := int64(q.tail.Load()) - int64(q.head.Load())
	if n < 0 {
		return 0
	}
	return int(n)
}
