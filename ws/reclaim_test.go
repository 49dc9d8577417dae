package ws

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// heapFree is the Go heap memory that is free but still held from the
// system.
func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHeapHandedBack is point 6's Go heap part: after a burst leaves
// 64 MiB or more of the heap free, the server hands it back to the system
// (debug.FreeOSMemory) within ReleaseMemoryEvery, and counts it.
func TestHeapHandedBack(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ReleaseMemoryEvery = time.Second
	srv := startServer(t, cfg, echoHandler)
	burst := make([][]byte, 0, 256)
	for range 256 { // a burst: 256 MiB, then garbage
		b := make([]byte, 1<<20)
		b[0] = 1
		burst = append(burst, b)
	}
	runtime.KeepAlive(burst)
	burst = nil
	runtime.GC() // the heap's memory is free now, and held
	require.GreaterOrEqual(t, heapFree(), uint64(reclaimMin), "the burst left less free heap than the threshold")
	require.Eventually(t, func() bool { return srv.Stats().HeapReleases >= 1 }, 5*time.Second, 50*time.Millisecond)
	require.Less(t, heapFree(), uint64(reclaimMin), "handed back")
}
