package ring

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMPMCOrderAndBounds(t *testing.T) {
	q := NewMPMC[int](5)
	require.Equal(t, 8, q.Cap())
	for i := 0; i < 8; i++ {
		require.True(t, q.Push(i))
	}
	require.False(t, q.Push(99), "push into a full queue")
	for lap := 0; lap < 3; lap++ {
		for i := 0; i < 8; i++ {
			v, ok := q.Pop()
			require.True(t, ok)
			require.Equal(t, lap*8+i, v)
			require.True(t, q.Push((lap+1)*8+i))
		}
	}
	for i := 0; i < 8; i++ {
		_, ok := q.Pop()
		require.True(t, ok)
	}
	_, ok := q.Pop()
	require.False(t, ok, "pop from an empty queue")
}

// TestMPMCStress runs more producers and consumers than CPUs and checks that
// every value arrives exactly once.
func TestMPMCStress(t *testing.T) {
	const producers, perProducer = 8, 20000
	consumers := 2 * runtime.GOMAXPROCS(0)
	q := NewMPMC[int](64)
	seen := make([]int32, producers*perProducer)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				for !q.Push(p*perProducer + i) {
					runtime.Gosched()
				}
			}
		}(p)
	}
	var got sync.WaitGroup
	var mu sync.Mutex
	remaining := producers * perProducer
	for c := 0; c < consumers; c++ {
		got.Add(1)
		go func() {
			defer got.Done()
			local := make([]int, 0, 1024)
			for {
				v, ok := q.Pop()
				if !ok {
					mu.Lock()
					for _, x := range local {
						seen[x]++
					}
					remaining -= len(local)
					done := remaining == 0
					mu.Unlock()
					local = local[:0]
					if done {
						return
					}
					runtime.Gosched()
					continue
				}
				local = append(local, v)
			}
		}()
	}
	wg.Wait()
	got.Wait()
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("value %d seen %d times", i, n)
		}
	}
}
