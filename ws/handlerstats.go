package ws

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Handler latency histogram: bucket i counts handler times of at most
// 2^(latencyShift+i) ns; the last bucket counts the rest. Powers of two
// make the bucket one bits.Len64 away from the duration: no search, no
// branch per bucket. 128 ns .. 67 ms.
const (
	latencyShift   = 7
	latencyBuckets = 20 // finite buckets; one more counts the rest
)

// HandlerLatencyBounds returns the upper bounds of HandlerStats.Latency's
// finite buckets: 128ns, 256ns, ... doubling up to about 67ms.
func HandlerLatencyBounds() []time.Duration {
	b := make([]time.Duration, latencyBuckets)
	for i := range b {
		b[i] = time.Duration(1) << (latencyShift + i)
	}
	return b
}

func latencyBucket(d time.Duration) int {
	ns := uint64(max(d, 1))
	return min(bits.Len64((ns-1)>>latencyShift), latencyBuckets)
}

// handlerStripe is one loop's handler counters. Only that loop's thread
// adds to them (atomically, so that scrapes may read them); the padding
// keeps loops off each other's cache lines.
type handlerStripe struct {
	processed atomic.Uint64
	latency   [latencyBuckets + 1]atomic.Uint64 // sampled messages only
	sumNs     atomic.Uint64                     // sampled messages only
	errors    atomic.Uint64
	_         [64]byte
}

// latencySample: one message in latencySample is timed. Two monotonic
// clock reads cost 60-140 ns on our VMs, a tenth of a 64-byte echo's whole
// server CPU; sampling keeps the histogram's shape at 1/16 of that cost.
const latencySample = 16

// handlerMetrics are the counters of the HandlerMetrics middleware, one
// stripe per loop.
type handlerMetrics struct {
	stripes []handlerStripe
}

func (m *handlerMetrics) stripe(loop int) *handlerStripe {
	if uint(loop) >= uint(len(m.stripes)) {
		loop = 0 // made before the loops were planned (from an Option): share stripe 0
	}
	return &m.stripes[loop]
}

// timeNext reports whether to time the next message: every
// latencySample-th one. The message is counted after it is handled, so that
// a panic unwinding through the middleware is not counted.
func (s *handlerStripe) timeNext() bool {
	return s.processed.Load()%latencySample == latencySample-1
}

func (s *handlerStripe) observe(d time.Duration) {
	s.latency[latencyBucket(d)].Add(1)
	s.sumNs.Add(uint64(d))
}

// HandlerStats are what the HandlerMetrics middleware measured: message
// events only (opens and closes are passed through unmeasured).
type HandlerStats struct {
	Processed uint64 // messages handled
	Errors    uint64 // of which the handler returned an error
	// The latency figures cover a sample: one message in 16 is timed.
	Sampled    uint64        // messages timed
	LatencySum time.Duration // time the sampled messages spent in the handler (and the middlewares inside HandlerMetrics)
	// Latency[i] counts sampled messages whose handling took at most
	// HandlerLatencyBounds()[i] and more than the bound before; the last
	// element counts the slower ones.
	Latency [latencyBuckets + 1]uint64
}

// HandlerStats sums the HandlerMetrics middleware's counters over loops;
// all zero if the middleware is not installed.
func (c *Control) HandlerStats() HandlerStats {
	var hs HandlerStats
	c.mu.Lock()
	m := c.handler
	c.mu.Unlock()
	if m == nil {
		return hs
	}
	for i := range m.stripes {
		s := &m.stripes[i]
		hs.Processed += s.processed.Load()
		for j := range s.latency {
			n := s.latency[j].Load()
			hs.Latency[j] += n
			hs.Sampled += n
		}
		hs.LatencySum += time.Duration(s.sumNs.Load())
		hs.Errors += s.errors.Load()
	}
	return hs
}

// handlerMetrics returns the server's handler counters, making them on
// first use (one stripe per loop).
func (c *Control) handlerMetrics() *handlerMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handler == nil {
		c.handler = &handlerMetrics{stripes: make([]handlerStripe, max(len(c.s.loops), 1))}
	}
	return c.handler
}
