package ring

import (
	"testing"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// TestZeroAllocs asserts that Push and Pop allocate nothing.
func TestZeroAllocs(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := NewMPMC[uint64](8)
	for name, f := range map[string]func(){
		"mpmc": func() { m.Push(1); m.Pop() },
		"mpmc full and empty": func() {
			for m.Push(1) {
			}
			for {
				if _, ok := m.Pop(); !ok {
					break
				}
			}
		},
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}

func TestMPMCLenAndReferences(t *testing.T) {
	q := NewMPMC[*int](4)
	if q.Len() != 0 {
		t.Fatalf("Len of a new queue = %d", q.Len())
	}
	q.Push(new(int))
	q.Push(new(int))
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	q.Pop()
	if q.slots[0].val != nil {
		t.Fatal("popped slot still references its value")
	}
}
