package reactor

import (
	"reflect"
	"sync/atomic"
)

// Counters are what a loop counts. Only the loop's thread writes them, with
// atomic adds, so that Loop.Stats can read them from any goroutine while the
// loop runs. The upper layer shows them under its own names (the field list
// is mirrored once there, and a conversion checks that both agree).
type Counters struct {
	Conns       int64  // open connections, in any state
	Accepted    uint64 // connections accepted
	ReadCalls   uint64 // reads that returned data
	BytesIn     uint64 // bytes read
	WriteCalls  uint64 // writes that sent data (gather writes and queue drains)
	BytesOut    uint64 // bytes written
	CopiedIn    uint64 // bytes of partial input kept between reads (copies)
	CopiedOut   uint64 // bytes copied to write queues (the socket would block)
	Wakeups     uint64 // returns from the poller's wait
	Events      uint64 // events handled; Events/Wakeups is the mean batch
	AcceptFails uint64 // accept failures (out of descriptors, say)
	// TasksDropped counts tasks posted for a connection that was closed
	// when the loop came to them (and tasks left when a loop ended
	// without a shutdown).
	TasksDropped uint64
	// HeapFallbacks counts buffers taken from the Go heap because the pool
	// had none of the size (or the loop has no pool).
	HeapFallbacks uint64
	// MemRefused counts buffers refused because the pool was exhausted and
	// the heap budget (Config.MaxHeapBytes) spent.
	MemRefused uint64
}

// Stats is a snapshot of one loop: its placement, inbox and counters.
type Stats struct {
	Loop     int
	CPU      int
	Node     int
	InboxLen int // tasks waiting in the inbox
	Counters
}

// count adds n to one of the loop's counters; loop thread only.
func count(p *uint64, n uint64) { atomic.AddUint64(p, n) }

// Stats returns a snapshot of the loop's counters; any goroutine.
func (l *Loop) Stats() Stats {
	st := Stats{Loop: l.idx, CPU: l.spec.CPU, Node: l.spec.Node, InboxLen: l.inbox.Len()}
	src := reflect.ValueOf(&l.stats).Elem()
	dst := reflect.ValueOf(&st.Counters).Elem()
	for i := range src.NumField() {
		switch p := src.Field(i).Addr().Interface().(type) {
		case *uint64:
			dst.Field(i).SetUint(atomic.LoadUint64(p))
		case *int64:
			dst.Field(i).SetInt(atomic.LoadInt64(p))
		}
	}
	return st
}
