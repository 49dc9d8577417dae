package stack

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// none marks the end of a chain; a link or head stores index+1 so that zero is
// the empty value.
const none = 0

// MaxLen is the largest number of slots a Treiber stack can manage.
const MaxLen = 1<<32 - 2

// Treiber is a lock-free LIFO of the integers [0, n) for any number of
// concurrent pushers and poppers. Each index may be on the stack at most once:
// pushing an index that is already there corrupts it, so callers own an index
// from the Pop that returned it until the Push that gives it back.
// Push and Pop never block and never allocate.
type Treiber struct {
	_    cpu.CacheLinePad
	head atomic.Uint64 // generation<<32 | (index+1), or generation<<32 when empty
	_    cpu.CacheLinePad
	next []atomic.Uint32 // next[i] = successor's index+1, valid while i is on the stack
}

// NewTreiber returns an empty stack for the indexes [0, n).
// It panics if n is negative or larger than MaxLen.
func NewTreiber(n int) *Treiber {
	if n < 0 || uint64(n) > MaxLen {
		panic("stack: NewTreiber: bad length")
	}
	return &Treiber{next: make([]atomic.Uint32, n)}
}

// NewTreiberFull returns a stack holding every index in [0, n), with 0 on top.
func NewTreiberFull(n int) *Treiber {
	s := NewTreiber(n)
	for i := n - 1; i >= 0; i-- {
		s.Push(uint32(i))
	}
	return s
}

// Len reports how many indexes the stack can manage (not how many it holds).
func (s *Treiber) Len() int { return len(s.next) }

// Push puts index i on top. i must be below Len and not on the stack.
func (s *Treiber) Push(i uint32) {
	link := &s.next[i] // bounds check before the loop
	for {
		old := s.head.Load()
		link.Store(uint32(old))
		if s.head.CompareAndSwap(old, next(old, i+1)) {
			return
		}
	}
}

// Pop takes the top index, or reports false when the stack is empty.
func (s *Treiber) Pop() (uint32, bool) {
	for {
		old := s.head.Load()
		top := uint32(old)
		if top == none {
			return 0, false
		}
		// The load of next may see a link written by a later Push of top, if
		// top was popped and pushed back meanwhile; the generation in old makes
		// the CAS fail in that case.
		succ := s.next[top-1].Load()
		if s.head.CompareAndSwap(old, next(old, succ)) {
			return top - 1, true
		}
	}
}

// Empty reports whether the stack held no index at the moment of the load.
func (s *Treiber) Empty() bool { return uint32(s.head.Load()) == none }

// next builds the head word that follows old with top as its top link.
func next(old uint64, top uint32) uint64 {
	return (old>>32+1)<<32 | uint64(top)
}
