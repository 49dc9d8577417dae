package ws

import (
	"encoding/json"
	"fmt"
	"html"
	"math/bits"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors and the server's hioload_* metrics (NewCollector).
func NewRegistry(s *Server) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(s),
	)
	return reg
}

// NewDebugMux returns a mux serving the server's observability endpoints:
//
//	/metrics        Prometheus metrics from g (NewRegistry(s) if g is nil)
//	/debug/probes   JSON of Control.Stats
//	/debug/pprof/   runtime profiles (index, profile, trace, cmdline, and
//	                every named profile: heap, goroutine, allocs, ...)
//
// The handlers are registered on this mux only, never on
// http.DefaultServeMux. Serve it on an address of its own, not on the
// public one: pprof and probes show the program's internals.
func NewDebugMux(s *Server, g prometheus.Gatherer) *http.ServeMux {
	if g == nil {
		g = NewRegistry(s)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/probes", func(w http.ResponseWriter, r *http.Request) {
		serveProbes(w, s.GetControl().Stats())
	})
	mux.HandleFunc("GET /debug/pprof/", pprofIndex)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprofCmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprofCPU)
	mux.HandleFunc("GET /debug/pprof/trace", pprofTrace)
	return mux
}

// serveProbes writes stats as one JSON object; a value that cannot be
// encoded shows as {"error": ...} instead of failing the page.
func serveProbes(w http.ResponseWriter, stats map[string]any) {
	out := make(map[string]json.RawMessage, len(stats))
	for k, v := range stats {
		b, err := json.Marshal(v)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		out[k] = b
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// The pprof handlers are written here on runtime/pprof rather than taken
// from net/http/pprof, whose init registers them on http.DefaultServeMux in
// every program that imports it: a library must not publish its users'
// profiles on their default mux behind their back.

func pprofIndex(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/")
	if name != "" {
		pprofNamed(w, r, name)
		return
	}
	profiles := pprof.Profiles()
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name() < profiles[j].Name() })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<html><head><title>/debug/pprof/</title></head><body><p>/debug/pprof/</p><table>\n")
	for _, p := range profiles {
		n := html.EscapeString(p.Name())
		fmt.Fprintf(w, "<tr><td>%d</td><td><a href=\"%s?debug=1\">%s</a></td></tr>\n", p.Count(), n, n)
	}
	fmt.Fprint(w, "</table><p><a href=\"profile?seconds=30\">profile</a> (CPU, 30s) · "+
		"<a href=\"trace?seconds=1\">trace</a> (1s) · <a href=\"cmdline\">cmdline</a></p></body></html>\n")
}

func pprofNamed(w http.ResponseWriter, r *http.Request, name string) {
	p := pprof.Lookup(name)
	if p == nil {
		http.Error(w, "unknown profile "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if name == "heap" && r.FormValue("gc") != "" {
		runtime.GC()
	}
	if debug > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	p.WriteTo(w, debug)
}

func pprofCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(os.Args, "\x00"))
}

// pprofSeconds reads ?seconds= (default def, at most 5 minutes).
func pprofSeconds(r *http.Request, def int) time.Duration {
	sec, err := strconv.Atoi(r.FormValue("seconds"))
	if err != nil || sec <= 0 {
		sec = def
	}
	return time.Duration(min(sec, 300)) * time.Second
}

func pprofCPU(w http.ResponseWriter, r *http.Request) {
	d := pprofSeconds(r, 30)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	if err := pprof.StartCPUProfile(w); err != nil {
		http.Error(w, "cannot start CPU profile: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sleep(r, d)
	pprof.StopCPUProfile()
}

func pprofTrace(w http.ResponseWriter, r *http.Request) {
	d := pprofSeconds(r, 1)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
	if err := trace.Start(w); err != nil {
		http.Error(w, "cannot start trace: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sleep(r, d)
	trace.Stop()
}

// sleep waits d or until the client goes away.
func sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// collector exports Server.Stats and the handler metrics as hioload_*
// metrics. It reads the counters at scrape time: nothing is added to the
// per-message path.
type collector struct {
	s *Server

	connections, accepted, upgraded, rejected   *prometheus.Desc
	messagesIn, messagesOut, bytesIn, bytesOut  *prometheus.Desc
	reassembled, closes, overCap, timeouts      *prometheus.Desc
	loopConns, loopAccepted, loopReads          *prometheus.Desc
	loopReadBytes, loopWrites, loopWriteBytes   *prometheus.Desc
	loopCopiedIn, loopCopiedOut, loopWakeups    *prometheus.Desc
	loopEvents, loopInbox, loopAcceptFails      *prometheus.Desc
	batchSize, maxFrame, maxMessage, maxHandsh  *prometheus.Desc
	maxWriteQueue, handshakeTimeout, idleTime   *prometheus.Desc
	handlerProcessed, handlerErrors, handlerLat *prometheus.Desc
	poolInUse, poolCapacity, poolExhausted      *prometheus.Desc
	poolBytes, poolHugeBytes                    *prometheus.Desc
}

// NewCollector returns a prometheus.Collector of the server's metrics, all
// named hioload_*; docs/OBSERVABILITY.md lists them. It is cheap to
// scrape: one Server.Stats call.
func NewCollector(s *Server) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hioload_"+name, help, labels, nil)
	}
	loop := []string{"loop", "cpu", "node"}
	return &collector{
		s:                s,
		connections:      d("connections", "Open WebSocket connections."),
		accepted:         d("accepted_total", "TCP connections accepted."),
		upgraded:         d("upgraded_total", "WebSocket handshakes completed."),
		rejected:         d("rejected_total", "Handshakes refused with an HTTP error."),
		messagesIn:       d("messages_in_total", "Whole messages received."),
		messagesOut:      d("messages_out_total", "Messages sent."),
		bytesIn:          d("bytes_in_total", "Payload bytes of messages received."),
		bytesOut:         d("bytes_out_total", "Payload bytes of messages sent."),
		reassembled:      d("reassembled_bytes_total", "Payload bytes copied to reassemble split or fragmented messages."),
		overCap:          d("over_cap_total", "Connections closed with 1013 because MaxConns was reached."),
		timeouts:         d("timeouts_total", "Connections dropped by the handshake or idle timeout."),
		closes:           d("closes_sent_total", "Close frames the server initiated, by status code (0: codes outside 1000-1015).", "code"),
		loopConns:        d("loop_connections", "Open TCP connections of the loop (any state).", loop...),
		loopAccepted:     d("loop_accepted_total", "TCP connections the loop accepted.", loop...),
		loopReads:        d("loop_read_calls_total", "read system calls that returned data.", loop...),
		loopReadBytes:    d("loop_read_bytes_total", "Bytes read from sockets (frames, headers, handshakes).", loop...),
		loopWrites:       d("loop_write_calls_total", "writev and write system calls.", loop...),
		loopWriteBytes:   d("loop_write_bytes_total", "Bytes written to sockets.", loop...),
		loopCopiedIn:     d("loop_copied_in_bytes_total", "Bytes of partial input kept between reads (copies).", loop...),
		loopCopiedOut:    d("loop_copied_out_bytes_total", "Bytes copied to write queues because a socket would block.", loop...),
		loopWakeups:      d("loop_wakeups_total", "epoll_wait returns; events_total/wakeups_total is the mean batch.", loop...),
		loopEvents:       d("loop_events_total", "Events handled (at most batch size per wakeup).", loop...),
		loopInbox:        d("loop_inbox_length", "Tasks waiting in the loop's inbox.", loop...),
		loopAcceptFails:  d("loop_accept_failures_total", "accept4 failures (e.g. out of descriptors).", loop...),
		batchSize:        d("batch_size", "Events taken per epoll_wait (reloadable)."),
		maxFrame:         d("max_frame_bytes", "Largest frame accepted (reloadable)."),
		maxMessage:       d("max_message_bytes", "Largest message accepted (reloadable)."),
		maxHandsh:        d("max_handshake_bytes", "Largest upgrade request accepted (reloadable)."),
		maxWriteQueue:    d("max_write_queue_bytes", "Bytes queued for a slow reader before it gets 1008 (reloadable)."),
		handshakeTimeout: d("handshake_timeout_seconds", "Time allowed to complete the upgrade (reloadable)."),
		idleTime:         d("idle_timeout_seconds", "Silence after which a connection is closed with 1001; 0 = off (reloadable)."),
		handlerProcessed: d("handler_processed_total", "Messages handled by the handler (HandlerMetrics middleware)."),
		handlerErrors:    d("handler_errors_total", "Messages whose handler returned an error (HandlerMetrics middleware)."),
		handlerLat:       d("handler_latency_seconds", "Time in the handler per message, over a sample of one message in 16 (HandlerMetrics middleware)."),
		poolInUse:        d("pool_buffers_in_use", "Pool buffers handed out and not yet released, by NUMA node, size class (bytes) and page kind.", "node", "class", "page"),
		poolCapacity:     d("pool_buffers", "Pool buffers in the class.", "node", "class", "page"),
		poolExhausted:    d("pool_exhausted_total", "Gets refused because the class had no free buffer (the loop fell back to the Go heap).", "node", "class", "page"),
		poolBytes:        d("pool_arena_bytes", "Bytes mapped for the node's pool, by page kind (hugetlb, thp, normal).", "node", "page"),
		poolHugeBytes:    d("pool_arena_huge_bytes", "Bytes of the node's pool that huge pages back.", "node", "page"),
	}
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.connections, c.accepted, c.upgraded, c.rejected,
		c.messagesIn, c.messagesOut, c.bytesIn, c.bytesOut, c.reassembled, c.closes, c.overCap, c.timeouts,
		c.loopConns, c.loopAccepted, c.loopReads, c.loopReadBytes, c.loopWrites, c.loopWriteBytes,
		c.loopCopiedIn, c.loopCopiedOut, c.loopWakeups, c.loopEvents, c.loopInbox, c.loopAcceptFails,
		c.batchSize, c.maxFrame, c.maxMessage, c.maxHandsh, c.maxWriteQueue, c.handshakeTimeout, c.idleTime,
		c.handlerProcessed, c.handlerErrors, c.handlerLat,
		c.poolInUse, c.poolCapacity, c.poolExhausted, c.poolBytes, c.poolHugeBytes,
	} {
		ch <- d
	}
}

// Collect reads the server's counters once and sends them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.connections, float64(st.Connections))
	counter(c.accepted, st.Accepted)
	counter(c.upgraded, st.Upgraded)
	counter(c.rejected, st.Rejected)
	counter(c.messagesIn, st.MessagesIn)
	counter(c.messagesOut, st.MessagesOut)
	counter(c.bytesIn, st.BytesIn)
	counter(c.bytesOut, st.BytesOut)
	counter(c.reassembled, st.Reassembled)
	counter(c.overCap, st.OverCap)
	counter(c.timeouts, st.Timeouts)
	for code, n := range st.CloseCodes {
		counter(c.closes, n, strconv.Itoa(int(code)))
	}
	for _, l := range st.Loops {
		lv := []string{strconv.Itoa(l.Loop), strconv.Itoa(l.CPU), strconv.Itoa(l.Node)}
		gauge(c.loopConns, float64(l.Conns), lv...)
		counter(c.loopAccepted, l.Accepted, lv...)
		counter(c.loopReads, l.ReadCalls, lv...)
		counter(c.loopReadBytes, l.BytesIn, lv...)
		counter(c.loopWrites, l.WriteCalls, lv...)
		counter(c.loopWriteBytes, l.BytesOut, lv...)
		counter(c.loopCopiedIn, l.CopiedIn, lv...)
		counter(c.loopCopiedOut, l.CopiedOut, lv...)
		counter(c.loopWakeups, l.Wakeups, lv...)
		counter(c.loopEvents, l.Events, lv...)
		gauge(c.loopInbox, float64(l.InboxLen), lv...)
		counter(c.loopAcceptFails, l.AcceptFails, lv...)
	}
	lim := c.s.CurrentLimits()
	gauge(c.batchSize, float64(lim.BatchSize))
	gauge(c.maxFrame, float64(lim.MaxFrameSize))
	gauge(c.maxMessage, float64(lim.MaxMessageSize))
	gauge(c.maxHandsh, float64(lim.MaxHandshakeSize))
	gauge(c.maxWriteQueue, float64(lim.MaxWriteQueue))
	gauge(c.handshakeTimeout, lim.HandshakeTimeout.Seconds())
	gauge(c.idleTime, lim.IdleTimeout.Seconds())
	c.collectHandler(ch)
	c.collectPools(ch)
}

func (c *collector) collectHandler(ch chan<- prometheus.Metric) {
	hs := c.s.GetControl().HandlerStats()
	ch <- prometheus.MustNewConstMetric(c.handlerProcessed, prometheus.CounterValue, float64(hs.Processed))
	ch <- prometheus.MustNewConstMetric(c.handlerErrors, prometheus.CounterValue, float64(hs.Errors))
	buckets := make(map[float64]uint64, latencyBuckets)
	var cum uint64
	for i, b := range HandlerLatencyBounds() {
		cum += hs.Latency[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.handlerLat, hs.Sampled, hs.LatencySum.Seconds(), buckets)
}

// collectPools sends each pool's figures: buffers in use and capacity per
// node, size class and page kind, Gets refused because a class was
// exhausted, and the arena's size and huge-page bytes.
func (c *collector) collectPools(ch chan<- prometheus.Metric) {
	for _, p := range c.s.PoolStats() {
		node := strconv.Itoa(p.Node)
		ch <- prometheus.MustNewConstMetric(c.poolBytes, prometheus.GaugeValue, float64(p.Arena.Size), node, p.Arena.Kind.String())
		ch <- prometheus.MustNewConstMetric(c.poolHugeBytes, prometheus.GaugeValue, float64(p.Arena.HugeBytes), node, p.Arena.Kind.String())
		for _, cl := range p.Classes {
			lv := []string{node, strconv.Itoa(cl.Size), cl.Pages.String()}
			ch <- prometheus.MustNewConstMetric(c.poolInUse, prometheus.GaugeValue, float64(cl.InUse), lv...)
			ch <- prometheus.MustNewConstMetric(c.poolCapacity, prometheus.GaugeValue, float64(cl.Capacity), lv...)
			ch <- prometheus.MustNewConstMetric(c.poolExhausted, prometheus.CounterValue, float64(cl.Exhausted), lv...)
		}
	}
}
