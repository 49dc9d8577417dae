package stack

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestTreiberLIFO(t *testing.T) {
	s := NewTreiber(4)
	if _, ok := s.Pop(); ok || !s.Empty() {
		t.Fatal("new stack is not empty")
	}
	for _, i := range []uint32{2, 0, 3} {
		s.Push(i)
	}
	for _, want := range []uint32{3, 0, 2} {
		got, ok := s.Pop()
		if !ok || got != want {
			t.Fatalf("Pop = %d, %v; want %d, true", got, ok, want)
		}
	}
	if _, ok := s.Pop(); ok {
		t.Fatal("Pop on an emptied stack succeeded")
	}
}

func TestTreiberFull(t *testing.T) {
	s := NewTreiberFull(5)
	for want := uint32(0); want < 5; want++ {
		got, ok := s.Pop()
		if !ok || got != want {
			t.Fatalf("Pop = %d, %v; want %d, true", got, ok, want)
		}
	}
	if !s.Empty() {
		t.Fatal("stack not empty after popping every index")
	}
}

func TestTreiberBadLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewTreiber(-1) did not panic")
		}
	}()
	NewTreiber(-1)
}

// TestTreiberStress runs more goroutines than CPUs over a small stack, where
// ABA is most likely: indexes are popped and pushed back constantly. Each
// goroutine marks the indexes it owns; an index handed to two owners at once,
// or lost, fails the test.
func TestTreiberStress(t *testing.T) {
	const n = 4
	workers := 4 * runtime.GOMAXPROCS(0)
	if workers < 8 {
		workers = 8
	}
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	s := NewTreiberFull(n)
	var owner [n]atomic.Int32
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held := make([]uint32, 0, 2)
			for k := 0; k < iters && !failed.Load(); k++ {
				// Hold up to two indexes at a time so the stack's shape varies.
				if len(held) < 2 {
					if i, ok := s.Pop(); ok {
						if !owner[i].CompareAndSwap(0, 1) {
							failed.Store(true)
							t.Errorf("index %d popped while owned", i)
							return
						}
						held = append(held, i)
						continue
					}
				}
				if len(held) > 0 {
					i := held[len(held)-1]
					held = held[:len(held)-1]
					owner[i].Store(0)
					s.Push(i)
				}
				if k%64 == 0 {
					runtime.Gosched()
				}
			}
			for _, i := range held {
				owner[i].Store(0)
				s.Push(i)
			}
		}()
	}
	wg.Wait()
	seen := make(map[uint32]bool)
	for {
		i, ok := s.Pop()
		if !ok {
			break
		}
		if seen[i] {
			t.Fatalf("index %d on the stack twice", i)
		}
		seen[i] = true
	}
	if len(seen) != n {
		t.Fatalf("%d indexes came back, want %d", len(seen), n)
	}
}
