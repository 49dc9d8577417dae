package stat

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSingleWriterManyReaders: one writer, readers that must only ever see
// values the writer stored, in increasing order; run with -race.
func TestSingleWriterManyReaders(t *testing.T) {
	var c Counter
	var g Gauge
	const n = 100000
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := uint64(0)
			for last < n {
				v := c.Load()
				require.GreaterOrEqual(t, v, last)
				last = v
				require.LessOrEqual(t, g.Load(), int64(1))
			}
		}()
	}
	for i := 0; i < n; i++ {
		c.Add(1)
		g.Add(1)
		g.Add(-1)
	}
	wg.Wait()
	require.Equal(t, uint64(n), c.Load())
	require.Zero(t, g.Load())
}

func BenchmarkCounterAdd(b *testing.B) {
	var c Counter
	for b.Loop() {
		c.Add(1)
	}
}
