package ws

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// value returns the metric of family name whose labels include want, as a
// float (counter, gauge, or a histogram's sample count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "no metric family %s", name)
	var sum float64
	found := false
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	require.True(t, found, "%s%v not found", name, want)
	return sum
}

// TestMetricsEndpoint runs echo traffic through a two-loop server with the
// handler metrics, then parses /metrics with the Prometheus text parser:
// the hioload_* families count what the test sent, and the Go runtime and
// process collectors are there.
func TestMetricsEndpoint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 2
	cfg.MaxFrameSize, cfg.MaxMessageSize = 64<<10, 64<<10
	cfg.ListenAddr = "127.0.0.1:0"
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	srv.UseMiddleware(HandlerMetrics(srv.GetControl()))
	h := HandlerFunc(func(e *Event) error {
		if e.Kind == MessageEvent && string(e.Data) == "fail" {
			return errors.New("refused")
		}
		return echoHandler(e)
	})
	done := make(chan error, 1)
	go func() { done <- srv.Run(h) }()
	t.Cleanup(func() { srv.Shutdown(); <-done })

	const clients, perClient = 4, 50
	var sent, sentBytes int
	for i := 0; i < clients; i++ {
		c := dialWS(t, srv.Addr().String())
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for j := 0; j < perClient; j++ {
			p := bytes.Repeat([]byte{byte(j)}, 1+j*37)
			c.Write(maskedFrame(OpBinary, true, p))
			_, got := readFrame(t, r)
			require.Equal(t, p, got)
			sent++
			sentBytes += len(p)
		}
	}
	// One handler error (1011) and one oversized message (1009).
	for _, p := range [][]byte{[]byte("fail"), make([]byte, 70<<10)} {
		c := dialWS(t, srv.Addr().String())
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(maskedFrame(OpBinary, true, p))
		h, _ := readFrame(t, c)
		require.Equal(t, OpClose, h.OpCode)
		c.Close()
	}
	require.Eventually(t, func() bool { return srv.Stats().Connections == clients }, 5*time.Second, 10*time.Millisecond)

	hs := httptest.NewServer(NewDebugMux(srv, nil))
	defer hs.Close()
	fams := scrape(t, hs.URL+"/metrics")

	v := func(name string, labels ...string) float64 {
		want := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			want[labels[i]] = labels[i+1]
		}
		return value(t, fams, name, want)
	}
	require.Equal(t, float64(sent+1), v("hioload_messages_in_total"), "every echoed message plus the failing one")
	require.Equal(t, float64(sent), v("hioload_messages_out_total"))
	require.Equal(t, float64(sentBytes+4), v("hioload_bytes_in_total"))
	require.Equal(t, float64(sentBytes), v("hioload_bytes_out_total"))
	require.Equal(t, float64(clients), v("hioload_connections"))
	require.Equal(t, float64(clients+2), v("hioload_upgraded_total"))
	require.GreaterOrEqual(t, v("hioload_accepted_total"), float64(clients+2))
	require.Equal(t, 1.0, v("hioload_closes_sent_total", "code", "1011"))
	require.Equal(t, 1.0, v("hioload_closes_sent_total", "code", "1009"))
	require.Equal(t, float64(sent+1), v("hioload_handler_processed_total"))
	require.Equal(t, 1.0, v("hioload_handler_errors_total"))
	require.Equal(t, float64((sent+1)/latencySample), v("hioload_handler_latency_seconds"), "histogram count: one message in 16 is timed")
	lat := fams["hioload_handler_latency_seconds"].Metric[0].Histogram
	if runtime.GOOS != "windows" { // Windows' monotonic clock ticks about every 1 ms: a fast echo measures 0
		require.Greater(t, lat.GetSampleSum(), 0.0)
	}
	require.Len(t, lat.Bucket, latencyBuckets+1, "the finite buckets and +Inf")
	require.Equal(t, 32.0, v("hioload_batch_size"))
	require.Equal(t, float64(64<<10), v("hioload_max_message_bytes"))
	require.Equal(t, 10.0, v("hioload_handshake_timeout_seconds"))
	require.Equal(t, srv.CurrentLimits().IdleTimeout.Seconds(), v("hioload_idle_timeout_seconds"))
	require.Zero(t, v("hioload_over_cap_total"))
	require.Zero(t, v("hioload_timeouts_total"))

	// Per loop: both loops present with their placement labels; their
	// counters add up to the totals.
	var loopConns, readBytes, wakeups float64
	for _, l := range srv.Stats().Loops {
		labels := []string{"loop", strconv.Itoa(l.Loop), "cpu", strconv.Itoa(l.CPU), "node", strconv.Itoa(l.Node)}
		loopConns += v("hioload_loop_connections", labels...)
		readBytes += v("hioload_loop_read_bytes_total", labels...)
		wakeups += v("hioload_loop_wakeups_total", labels...)
		require.GreaterOrEqual(t, v("hioload_loop_events_total", labels...), v("hioload_loop_wakeups_total", labels...)-1)
		for _, name := range []string{"hioload_loop_accepted_total", "hioload_loop_read_calls_total",
			"hioload_loop_write_calls_total", "hioload_loop_write_bytes_total", "hioload_loop_copied_in_bytes_total",
			"hioload_loop_copied_out_bytes_total", "hioload_loop_inbox_length", "hioload_loop_accept_failures_total"} {
			v(name, labels...)
		}
	}
	require.Len(t, fams["hioload_loop_connections"].Metric, 2)
	require.Equal(t, float64(clients), loopConns)
	require.Greater(t, readBytes, float64(sentBytes), "frames and handshakes are more than payloads")
	require.Greater(t, wakeups, 0.0)
	// Pools: per node, class and page kind.
	pools := srv.PoolStats()
	require.NotEmpty(t, pools, "the server maps a pool per node")
	for _, p := range pools {
		node, page := strconv.Itoa(p.Node), p.Arena.Kind.String()
		require.Equal(t, float64(p.Arena.Size), v("hioload_pool_arena_bytes", "node", node, "page", page))
		v("hioload_pool_arena_huge_bytes", "node", node, "page", page)
		for _, cl := range p.Classes {
			labels := []string{"node", node, "class", strconv.Itoa(cl.Size), "page", cl.Pages.String()}
			require.Equal(t, float64(cl.Capacity), v("hioload_pool_buffers", labels...))
			require.LessOrEqual(t, v("hioload_pool_buffers_in_use", labels...), float64(cl.Capacity))
			v("hioload_pool_exhausted_total", labels...)
		}
	}

	// The conventional collectors.
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_gc_duration_seconds",
		"process_open_fds", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		require.Contains(t, fams, name)
	}

	// A reload shows at the next scrape.
	l := srv.CurrentLimits()
	l.BatchSize = 9
	require.NoError(t, srv.GetControl().Reload(l))
	require.Equal(t, 9.0, value(t, scrape(t, hs.URL+"/metrics"), "hioload_batch_size", nil))
}

// TestDebugMuxPprof: the profiles are served on the debug mux, and nothing
// is registered on http.DefaultServeMux.
func TestDebugMuxPprof(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	srv := startServer(t, cfg, echoHandler)
	hs := httptest.NewServer(NewDebugMux(srv, nil))
	defer hs.Close()
	type result struct {
		status int
		body   string
		err    error
	}
	pages := map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/heap?debug=1":      "heap profile:",
		"/debug/pprof/cmdline":           "ws.test",
		"/debug/pprof/profile?seconds=1": "",
		"/debug/pprof/trace?seconds=1":   "go 1.",
	}
	results := make(map[string]chan result, len(pages))
	for path := range pages { // concurrently: profile and trace take a second each
		ch := make(chan result, 1)
		results[path] = ch
		go func() {
			resp, err := http.Get(hs.URL + path)
			if err != nil {
				ch <- result{err: err}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- result{status: resp.StatusCode, body: string(body)}
		}()
	}
	for path, want := range pages {
		r := <-results[path]
		require.NoError(t, r.err, path)
		require.Equal(t, http.StatusOK, r.status, path)
		require.NotEmpty(t, r.body, path)
		require.Contains(t, r.body, want, path)
	}
	resp, err := http.Get(hs.URL + "/debug/pprof/nosuch")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	req := httptest.NewRequest("GET", "/debug/pprof/", nil)
	_, pattern := http.DefaultServeMux.Handler(req)
	require.Empty(t, pattern, "pprof must not be on http.DefaultServeMux")
}

// TestHandlerMetricsAllocs: the middleware allocates nothing per message.
func TestHandlerMetricsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ListenAddr = "127.0.0.1:0"
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	defer srv.Shutdown()
	h := HandlerMetrics(srv.GetControl())(HandlerFunc(func(e *Event) error { return nil }))
	e := &Event{Kind: MessageEvent, Op: OpBinary, Data: []byte("x")}
	require.Zero(t, testing.AllocsPerRun(1000, func() { h.Handle(e) }))
	require.Equal(t, uint64(1001), srv.GetControl().HandlerStats().Processed)
}

// TestEchoAllocsWithHandlerMetrics: the whole echo path stays allocation
// free with the handler metrics installed.
func TestEchoAllocsWithHandlerMetrics(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ListenAddr = "127.0.0.1:0"
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	srv.UseMiddleware(HandlerMetrics(srv.GetControl()))
	done := make(chan error, 1)
	go func() { done <- srv.Run(echoHandler) }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	allocs := echoAllocs(t, srv.Addr().String(), 16, 64, 1000)
	t.Logf("heap allocations per echoed message with HandlerMetrics: %.4f", allocs)
	require.Less(t, allocs, 0.01)
	require.Equal(t, uint64(16*1100), srv.GetControl().HandlerStats().Processed)
}

func TestLatencyBucket(t *testing.T) {
	bounds := HandlerLatencyBounds()
	require.Len(t, bounds, latencyBuckets)
	require.Equal(t, 128*time.Nanosecond, bounds[0])
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 0}, {1, 0}, {128, 0}, {129, 1}, {256, 1}, {257, 2}, {time.Microsecond, 3},
		{bounds[latencyBuckets-1], latencyBuckets - 1}, {bounds[latencyBuckets-1] + 1, latencyBuckets}, {time.Hour, latencyBuckets}} {
		require.Equal(t, tc.want, latencyBucket(tc.d), "%v", tc.d)
		if tc.want < latencyBuckets {
			require.LessOrEqual(t, tc.d, bounds[tc.want])
		}
	}
}

// BenchmarkHandlerMetrics measures the middleware's cost per message
// against the bare handler.
func BenchmarkHandlerMetrics(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ListenAddr = "127.0.0.1:0"
	srv, err := NewServer(cfg)
	require.NoError(b, err)
	defer srv.Shutdown()
	bare := HandlerFunc(func(e *Event) error { return nil })
	e := &Event{Kind: MessageEvent, Op: OpBinary, Data: []byte("x")}
	for _, bc := range []struct {
		name string
		h    Handler
	}{{"bare", bare}, {"metrics", HandlerMetrics(srv.GetControl())(bare)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.Handle(e)
			}
		})
	}
}
