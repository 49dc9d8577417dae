// Package ring holds MPMC, a bounded lock-free queue. The reactor uses one per
// event loop as its inbox: any goroutine posts a task with Push, and the loop
// drains them with Pop when it wakes.
//
// MPMC is Dmitry Vyukov's bounded multi-producer multi-consumer queue
// ("Bounded MPMC queue", 1024cores.net, 2010): every slot carries a sequence
// number; a producer claims slot pos with a CAS on the tail only when the slot's
// sequence equals pos, writes the value, then publishes it by storing pos+1; a
// consumer claims with a CAS on the head when the sequence equals pos+1 and frees
// the slot for the next lap by storing pos+capacity. The sequence store is the
// release that orders the value write before the matching consumer's read, so
// the race detector sees a happens-before edge for every value.
//
//	q := ring.NewMPMC[func()](1024) // capacity rounds up to a power of two
//	if !q.Push(task) {
//		// full: the caller decides (retry, drop, report backpressure)
//	}
//	for t, ok := q.Pop(); ok; t, ok = q.Pop() {
//		t()
//	}
package ring
