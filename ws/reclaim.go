package ws

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// reclaimMin is how much free Go heap memory makes it worth handing back
// at once rather than leaving it to the runtime's background scavenger,
// which returns memory slowly (it paces itself to about 1% of a CPU).
const reclaimMin = 64 << 20

// reclaimHeap runs while the server does (Config.ReleaseMemoryEvery > 0):
// once a second it looks at the Go heap memory that is free but still held
// from the system, and when a burst left reclaimMin or more of it, hands it
// back with debug.FreeOSMemory (a garbage collection plus a full scavenge,
// on this goroutine: the event loops keep running), at most once per
// interval. The loops give their own large buffers (regions) back by
// themselves; this is for the Go heap's part of a burst.
func (s *Server) reclaimHeap(every time.Duration, stop <-chan struct{}) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 || sample[0].Value.Uint64() < reclaimMin || now.Sub(last) < every {
				continue
			}
			debug.FreeOSMemory()
			last = time.Now()
			s.heapReleases.Add(1)
		}
	}
}
