package stack

// Spares is a bounded free list of *T for one goroutine (an event loop):
// per-connection state that only busy connections hold is taken from it
// and given back when the connection falls idle, so that an idle
// connection holds a nil pointer and a burst does not make garbage. The
// zero value holds nothing; Put keeps at most Max values.
type Spares[T any] struct {
	Max  int
	free []*T
}

// Get returns a kept value, or a new zero one.
func (s *Spares[T]) Get() *T {
	n := len(s.free)
	if n == 0 {
		return new(T)
	}
	v := s.free[n-1]
	s.free[n-1] = nil
	s.free = s.free[:n-1]
	return v
}

// Put zeroes v and keeps it, unless Max are kept already.
func (s *Spares[T]) Put(v *T) {
	*v = *new(T)
	if len(s.free) < s.Max {
		s.free = append(s.free, v)
	}
}
