package stack

import "testing"

// TestSpares: Get reuses what Put kept, zeroed, up to Max, and allocates
// nothing in steady state.
func TestSpares(t *testing.T) {
	type state struct{ n int }
	s := Spares[state]{Max: 2}
	a, b, c := s.Get(), s.Get(), s.Get()
	a.n, b.n, c.n = 1, 2, 3
	s.Put(a)
	s.Put(b)
	s.Put(c) // over Max: dropped
	if got := s.Get(); got != b || got.n != 0 {
		t.Fatalf("Get = %p %+v, want b (%p) zeroed", got, got, b)
	}
	if got := s.Get(); got != a || got.n != 0 {
		t.Fatalf("Get = %p %+v, want a (%p) zeroed", got, got, a)
	}
	if got := s.Get(); got == a || got == b || got == c {
		t.Fatal("Get of an empty list must return a new value")
	}
	s.Put(a)
	if n := testing.AllocsPerRun(1000, func() { s.Put(s.Get()) }); n != 0 {
		t.Fatalf("Get/Put: %v allocs per run, want 0", n)
	}
}
