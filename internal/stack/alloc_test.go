package stack

import "testing"

// TestZeroAllocs asserts that Push and Pop allocate nothing.
func TestZeroAllocs(t *testing.T) {
	s := NewTreiberFull(4)
	n := testing.AllocsPerRun(1000, func() {
		i, ok := s.Pop()
		if !ok {
			t.Fatal("empty")
		}
		s.Push(i)
	})
	if n != 0 {
		t.Errorf("Pop/Push: %v allocs per run, want 0", n)
	}
}
