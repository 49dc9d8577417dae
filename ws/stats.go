package ws

import (
	"reflect"
	"sort"
	"sync/atomic"

	"github.com/hioload-ws/hioload-ws/internal/stack"
	"github.com/hioload-ws/hioload-ws/reactor"
)

// The server's counters are defined once, as the struct types below: the
// fields are what Stats shows, their metric tags what package wsmetrics
// exports (a name ending in _total is a counter, anything else a gauge),
// and sums over loops and nodes are taken field by field (addCounters).
// Each loop's thread writes its own copy with atomic adds; readers load
// them atomically, so that a snapshot never stops a loop.

// Counters are the protocol layer's counts.
type Counters struct {
	Connections  int64  `metric:"connections" help:"Open WebSocket connections."`
	Upgraded     uint64 `metric:"upgraded_total" help:"WebSocket handshakes completed."`
	Rejected     uint64 `metric:"rejected_total" help:"Handshakes refused with an HTTP error."`
	Timeouts     uint64 `metric:"timeouts_total" help:"Connections dropped by the handshake or idle timeout."`
	MessagesIn   uint64 `metric:"messages_in_total" help:"Whole messages received."`
	MessagesOut  uint64 `metric:"messages_out_total" help:"Messages sent."`
	BytesIn      uint64 `metric:"bytes_in_total" help:"Payload bytes of messages received."`
	BytesOut     uint64 `metric:"bytes_out_total" help:"Payload bytes of messages sent."`
	Reassembled  uint64 `metric:"reassembled_bytes_total" help:"Payload bytes copied into reassembly buffers: frames split across reads and fragmented messages (not those read straight into the buffer)."`
	RetainCopied uint64 `metric:"retain_copied_bytes_total" help:"Payload bytes Event.Retain copied because they were in no buffer it could share."`
	SendCopied   uint64 `metric:"send_copied_bytes_total" help:"Payload bytes Conn.Send copied from its caller."`
	// SendsDropped counts messages Send accepted that were not written:
	// the connection was closing (or failed writing them) when its loop
	// came to them. Sends whose TCP connection was already gone are in
	// LoopCounters.TasksDropped.
	SendsDropped uint64 `metric:"sends_dropped_total" help:"Messages Send accepted that were not written: the connection was closing when the loop came to them."`

	// permessage-deflate (RFC 7692): BytesIn and BytesOut count inflated
	// payloads; these the compressed ones.
	DeflateIn          uint64 `metric:"deflate_messages_in_total" help:"Messages received compressed (permessage-deflate)."`
	DeflateOut         uint64 `metric:"deflate_messages_out_total" help:"Messages sent compressed."`
	DeflateWireIn      uint64 `metric:"deflate_wire_in_bytes_total" help:"Compressed payload bytes received."`
	DeflateWireOut     uint64 `metric:"deflate_wire_out_bytes_total" help:"Compressed payload bytes sent."`
	DeflatePassthrough uint64 `metric:"deflate_passthrough_total" help:"Echoes of compressed messages sent as they arrived, without compressing again."`
	DeflateCopied      uint64 `metric:"deflate_copied_bytes_total" help:"Bytes copied for compression: inflater input and clients' history windows (growing the inflate buffer is in LoopCounters.CopiedGrow)."`
	ClosesSent         uint64 // close frames the server initiated; by code in Stats.CloseCodes
}

// LoopCounters are one event loop's transport counts (the reactor's, field
// for field).
type LoopCounters struct {
	Conns         int64  `metric:"loop_connections" help:"Open TCP connections of the loop (any state)."`
	Accepted      uint64 `metric:"loop_accepted_total" help:"TCP connections the loop accepted (admitted)."`
	Refused       uint64 `metric:"loop_refused_total" help:"TCP connections closed at accept: over MaxConns, MaxConnsPerIP, MaxHandshakes or MaxHandshakesPerIP."`
	ReadCalls     uint64 `metric:"loop_read_calls_total" help:"Reads that returned data."`
	BytesIn       uint64 `metric:"loop_read_bytes_total" help:"Bytes read from sockets (frames, headers, handshakes)."`
	WriteCalls    uint64 `metric:"loop_write_calls_total" help:"Writes that sent data (gather writes and queue drains)."`
	BytesOut      uint64 `metric:"loop_write_bytes_total" help:"Bytes written to sockets."`
	CopiedIn      uint64 `metric:"loop_copied_in_bytes_total" help:"Input bytes copied in memory: partial frames or requests put back in front of the next read, appended to or moved within a connection's input buffer."`
	CopiedOut     uint64 `metric:"loop_copied_out_bytes_total" help:"Output bytes copied to write queues because a socket would block, or moved to the front of a queue."`
	CopiedGrow    uint64 `metric:"loop_copied_grow_bytes_total" help:"Bytes copied when an input, write-queue or reassembly buffer moved to a larger one."`
	AdoptedOut    uint64 `metric:"loop_adopted_out_bytes_total" help:"Output bytes queued without a copy: a reply's unsent rest whose message buffer became the write queue."`
	Wakeups       uint64 `metric:"loop_wakeups_total" help:"Returns from the poller's wait; events_total/wakeups_total is the mean batch."`
	Events        uint64 `metric:"loop_events_total" help:"Events handled (at most batch size per wakeup)."`
	AcceptFails   uint64 `metric:"loop_accept_failures_total" help:"Accept failures (e.g. out of descriptors)."`
	TasksDropped  uint64 `metric:"loop_tasks_dropped_total" help:"Tasks (Send, CloseAsync) for a connection already closed when the loop came to them."`
	HeapFallbacks uint64 `metric:"loop_heap_fallbacks_total" help:"Buffers taken from the Go heap: the pool had none of the size, or the client address had its share of the class."`
	MemRefused    uint64 `metric:"loop_memory_refused_total" help:"Buffers refused: the memory budget was spent and the connection asking held more than its share."`
	Evicted       uint64 `metric:"loop_evicted_total" help:"Connections closed (1013) for holding the most buffer memory when another needed some and the budget was spent."`
	Stalled       uint64 `metric:"loop_stalled_total" help:"Connections closed (1008) because the client took none of their queued output for the write stall timeout."`
	CopiedSend    uint64 `metric:"loop_copied_send_bytes_total" help:"Bytes copied because an asynchronous send (io_uring) outlives the memory a reply was written from."`
	NoBuffers     uint64 `metric:"loop_no_buffers_total" help:"io_uring receives that found the provided buffers all in use (armed again; no data lost)."`
}

// LoopStats are one loop's placement, inbox and counters.
type LoopStats struct {
	Loop     int
	CPU      int      // -1: not pinned
	Node     int      // -1: unknown
	IOEngine IOEngine // the kernel interface the loop uses (a metrics label)
	InboxLen int      `metric:"loop_inbox_length" help:"Tasks waiting in the loop's inbox."`
	LoopCounters
}

// NodeStats are the loops' counters summed over one NUMA node.
type NodeStats struct {
	Node  int // -1 when the node is unknown
	Loops int
	LoopCounters
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Accepted uint64 `metric:"accepted_total" help:"TCP connections accepted."`
	Refused  uint64 `metric:"refused_total" help:"TCP connections closed at accept because a connection cap was reached."`
	Counters
	// HeapBytes is the buffer memory held beyond the pools (Go heap
	// buffers, and the memory large messages and write queues hold in
	// their reserved regions): what MaxHeapBytes bounds.
	HeapBytes int64 `metric:"heap_bytes" help:"Buffer memory held beyond the pools (Go heap and large-buffer regions), bounded by MaxHeapBytes."`
	// HeapReleases counts the times free Go heap memory was handed back to
	// the system after a burst (Config.ReleaseMemoryEvery).
	HeapReleases uint64 `metric:"heap_releases_total" help:"Times free Go heap memory was handed back to the system after a burst (debug.FreeOSMemory)."`
	// LogDropped counts log lines the LogSink given to WithLogSink
	// dropped because the log destination stalled or failed (0 without
	// one).
	LogDropped uint64 `metric:"log_dropped_lines_total" help:"Log lines dropped because the log destination was stalled or failing (WithLogSink)."`
	// CloseCodes counts the closes the server initiated by status code
	// (1000-1015; other codes are summed under 0).
	CloseCodes map[StatusCode]uint64
	Loops      []LoopStats
}

// loopState is the server's per-loop part, touched only by its loop thread
// (the counters are atomics so that Stats may read them from anywhere).
type loopState struct {
	c          Counters // first: 64-bit aligned for its atomics on 32-bit platforms
	closeCodes [closeCodeSlots]atomic.Uint64
	sendCopied atomic.Uint64 // Counters.SendCopied: Send runs on any goroutine
	s          *Server
	ev         Event
	readers    stack.Spares[msgReader] // kept for reuse (Conn.reader)
	z          *loopDeflate            // permessage-deflate machinery, made on first use
	_          [64]byte                // keep loops' counters off each other's cache lines
}

// count adds n to one of the loop's counters; loop thread only.
func count(p *uint64, n uint64) { atomic.AddUint64(p, n) }

// Stats returns the server's counters, summed over loops, and each loop's.
func (s *Server) Stats() Stats {
	var st Stats
	for i := range s.loops {
		ls := &s.loops[i]
		addCounters(&st.Counters, &ls.c)
		st.SendCopied += ls.sendCopied.Load()
		for j := range ls.closeCodes {
			if n := ls.closeCodes[j].Load(); n > 0 {
				if st.CloseCodes == nil {
					st.CloseCodes = map[StatusCode]uint64{}
				}
				st.CloseCodes[closeCodeOf(j)] += n
			}
		}
	}
	st.HeapBytes = s.engine.HeapBytes()
	st.HeapReleases = s.heapReleases.Load()
	if s.logSink != nil {
		st.LogDropped = s.logSink.Dropped()
	}
	for _, l := range s.engine.Loops() {
		rs := l.Stats()
		st.Accepted += rs.Accepted
		st.Refused += rs.Refused
		st.Loops = append(st.Loops, LoopStats{
			Loop: rs.Loop, CPU: rs.CPU, Node: rs.Node, IOEngine: rs.IOEngine, InboxLen: rs.InboxLen,
			LoopCounters: LoopCounters(rs.Counters),
		})
	}
	return st
}

// nodeStats sums the loops' counters per node, in node order.
func nodeStats(loops []LoopStats) []NodeStats {
	var nodes []NodeStats
	for i := range loops {
		l := &loops[i]
		j := sort.Search(len(nodes), func(j int) bool { return nodes[j].Node >= l.Node })
		if j == len(nodes) || nodes[j].Node != l.Node {
			nodes = append(nodes, NodeStats{})
			copy(nodes[j+1:], nodes[j:])
			nodes[j] = NodeStats{Node: l.Node}
		}
		nodes[j].Loops++
		addCounters(&nodes[j].LoopCounters, &l.LoopCounters)
	}
	return nodes
}

// addCounters adds each int64 and uint64 field of *src, loaded atomically,
// to the same field of *dst (both pointers to the same struct type).
func addCounters[T Counters | LoopCounters](dst, src *T) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range s.NumField() {
		switch p := s.Field(i).Addr().Interface().(type) {
		case *uint64:
			d.Field(i).SetUint(d.Field(i).Uint() + atomic.LoadUint64(p))
		case *int64:
			d.Field(i).SetInt(d.Field(i).Int() + atomic.LoadInt64(p))
		}
	}
}

// closeCodeSlots counts codes 1000-1015 one by one and the rest in slot 16.
const closeCodeSlots = 17

func closeCodeSlot(code StatusCode) int {
	if code >= 1000 && code < 1016 {
		return int(code - 1000)
	}
	return 16
}

func closeCodeOf(slot int) StatusCode {
	if slot < 16 {
		return StatusCode(1000 + slot)
	}
	return 0
}

// The reactor's counters are shown as LoopCounters: the conversion in Stats
// compiles only while both list the same fields.
var _ = LoopCounters(reactor.Counters{})
