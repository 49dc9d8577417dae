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
	Conns      int64  // open connections, in any state
	Accepted   uint64 // connections accepted (admitted)
	Refused    uint64 // connections closed at accept: over an admission cap
	ReadCalls  uint64 // reads that returned data
	BytesIn    uint64 // bytes read
	WriteCalls uint64 // writes that sent data (gather writes and queue drains)
	BytesOut   uint64 // bytes written
	// CopiedIn counts input bytes copied in memory: a partial frame or
	// request put back in front of the next read, new bytes appended
	// behind a leftover too long for that, and leftovers kept or moved
	// within the connection's input buffer.
	CopiedIn uint64
	// CopiedOut counts output bytes copied to write queues because the
	// socket would not take them, and bytes moved to the front of a queue
	// to make room.
	CopiedOut uint64
	// CopiedGrow counts bytes copied when a slow-path buffer (input kept,
	// write queue, message reassembly) moved to a larger one.
	CopiedGrow uint64
	// AdoptedOut counts output bytes queued without a copy: the unsent
	// rest of a reply from a buffer the protocol layer was done with
	// (Conn.FreeAfterFlush), which became the write queue.
	AdoptedOut  uint64
	Wakeups     uint64 // returns from the poller's wait
	Events      uint64 // events handled; Events/Wakeups is the mean batch
	AcceptFails uint64 // accept failures (out of descriptors, say)
	// TasksDropped counts tasks posted for a connection that was closed
	// when the loop came to them (and tasks left when a loop ended
	// without a shutdown).
	TasksDropped uint64
	// HeapFallbacks counts buffers taken from the Go heap because the pool
	// had none of the size, or its client address its share of the class
	// (or the loop has no pool).
	HeapFallbacks uint64
	// MemRefused counts buffers refused: the budget (Config.MaxHeapBytes)
	// was spent and the connection asking held more than its share.
	MemRefused uint64
	Evicted    uint64 // connections evicted for holding more than their share while memory was short
	Stalled    uint64 // connections evicted because their peer stopped reading
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
