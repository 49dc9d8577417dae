package ring

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSPSCOrderAndBounds(t *testing.T) {
	q := NewSPSC[int](3)
	require.Equal(t, 4, q.Cap())
	_, ok := q.Pop()
	require.False(t, ok, "pop from a new queue")
	for i := 0; i < 4; i++ {
		require.True(t, q.Push(i))
	}
	require.False(t, q.Push(99), "push into a full queue")
	require.Equal(t, 4, q.Len())
	for lap := 0; lap < 5; lap++ {
		for i := 0; i < 4; i++ {
			v, ok := q.Pop()
			require.True(t, ok)
			require.Equal(t, lap*4+i, v)
			require.True(t, q.Push((lap+1)*4+i))
		}
	}
	require.False(t, q.Push(99))
	for i := 0; i < 4; i++ {
		_, ok := q.Pop()
		require.True(t, ok)
	}
	_, ok = q.Pop()
	require.False(t, ok, "pop from an emptied queue")
	require.Equal(t, 0, q.Len())
}

// TestSPSCReleasesReferences checks that a popped slot no longer pins its value.
func TestSPSCReleasesReferences(t *testing.T) {
	q := NewSPSC[*int](2)
	v := new(int)
	require.True(t, q.Push(v))
	_, ok := q.Pop()
	require.True(t, ok)
	require.Nil(t, q.slots[0])
}

// TestSPSCStress passes values between one producer and one consumer while
// more goroutines than CPUs spin beside them, so both sides are preempted
// mid-operation; every value must arrive once, in order.
func TestSPSCStress(t *testing.T) {
	n := 200000
	if testing.Short() {
		n = 20000
	}
	q := NewSPSC[int](16)
	stop := make(chan struct{})
	var noise sync.WaitGroup
	for i := 0; i < 2*runtime.GOMAXPROCS(0); i++ {
		noise.Add(1)
		go func() {
			defer noise.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = q.Len()
					runtime.Gosched()
				}
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		for want := 0; want < n; {
			v, ok := q.Pop()
			if !ok {
				runtime.Gosched()
				continue
			}
			if v != want {
				done <- fmt.Errorf("got %d, want %d", v, want)
				return
			}
			want++
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		for !q.Push(i) {
			runtime.Gosched()
		}
	}
	err := <-done
	close(stop)
	noise.Wait()
	require.NoError(t, err)
}
