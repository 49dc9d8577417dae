package wsmetrics_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/ws"
	"github.com/hioload-ws/hioload-ws/ws/wsmetrics"
)

// start runs an echo server (a message "fail" makes the handler fail) on
// 127.0.0.1:0 with the defaults changed by mod and setup, until t ends.
func start(t *testing.T, mod func(*ws.Config), setup func(*ws.Server)) *ws.Server {
	t.Helper()
	cfg := ws.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.ShutdownTimeout = time.Second
	mod(&cfg)
	srv, err := ws.NewServer(cfg)
	require.NoError(t, err)
	if setup != nil {
		setup(srv)
	}
	h := ws.HandlerFunc(func(e *ws.Event) error {
		if e.Kind != ws.MessageEvent {
			return nil
		}
		if string(e.Data) == "fail" {
			return errors.New("refused")
		}
		return e.Conn.WriteMessage(e.Op, e.Data)
	})
	done := make(chan error, 1)
	go func() { done <- srv.Run(h) }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return srv
}

// dial opens a WebSocket client connection (gobwas/ws) to srv.
func dial(t *testing.T, srv *ws.Server) io.ReadWriteCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, _, err := gws.Dial(ctx, "ws://"+srv.Addr().String())
	require.NoError(t, err)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends p as a binary message and returns the server's reply.
func echo(t *testing.T, c io.ReadWriter, p []byte) []byte {
	t.Helper()
	require.NoError(t, wsutil.WriteClientMessage(c, gws.OpBinary, p))
	got, err := wsutil.ReadServerBinary(c)
	require.NoError(t, err)
	return got
}

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
	srv := start(t, func(cfg *ws.Config) {
		cfg.Workers = 2
		cfg.MaxFrameSize, cfg.MaxMessageSize = 64<<10, 64<<10
	}, func(srv *ws.Server) { srv.UseMiddleware(ws.HandlerMetrics(srv.GetControl())) })

	const clients, perClient = 4, 50
	var sent, sentBytes int
	for i := 0; i < clients; i++ {
		c := dial(t, srv)
		for j := 0; j < perClient; j++ {
			p := bytes.Repeat([]byte{byte(j)}, 1+j*37)
			require.Equal(t, p, echo(t, c, p))
			sent++
			sentBytes += len(p)
		}
	}
	// One handler error (1011) and one oversized message (1009).
	for _, p := range [][]byte{[]byte("fail"), make([]byte, 70<<10)} {
		c := dial(t, srv)
		require.NoError(t, wsutil.WriteClientMessage(c, gws.OpBinary, p))
		_, err := wsutil.ReadServerBinary(c)
		var closed wsutil.ClosedError
		require.ErrorAs(t, err, &closed)
		c.Close()
	}
	require.Eventually(t, func() bool { return srv.Stats().Connections == clients }, 5*time.Second, 10*time.Millisecond)

	hs := httptest.NewServer(wsmetrics.NewDebugMux(srv, nil))
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
	require.Equal(t, float64((sent+1)/16), v("hioload_handler_latency_seconds"), "histogram count: one message in 16 is timed")
	lat := fams["hioload_handler_latency_seconds"].Metric[0].Histogram
	if runtime.GOOS != "windows" { // Windows' monotonic clock ticks about every 1 ms: a fast echo measures 0
		require.Greater(t, lat.GetSampleSum(), 0.0)
	}
	require.Len(t, lat.Bucket, len(ws.HandlerLatencyBounds())+1, "the finite buckets and +Inf")
	require.Equal(t, 32.0, v("hioload_batch_size"))
	require.Equal(t, float64(64<<10), v("hioload_max_message_bytes"))
	require.Equal(t, 10.0, v("hioload_handshake_timeout_seconds"))
	require.Equal(t, srv.GetControl().Limits().IdleTimeout.Seconds(), v("hioload_idle_timeout_seconds"))
	require.Zero(t, v("hioload_refused_total"))
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
		node, page := strconv.Itoa(p.Node), p.Pages
		require.Equal(t, float64(p.Bytes), v("hioload_pool_arena_bytes", "node", node, "page", page))
		v("hioload_pool_arena_huge_bytes", "node", node, "page", page)
		for _, cl := range p.Classes {
			labels := []string{"node", node, "class", strconv.Itoa(cl.Size), "page", cl.Pages}
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
	l := srv.GetControl().Limits()
	l.BatchSize = 9
	require.NoError(t, srv.GetControl().Reload(l))
	require.Equal(t, 9.0, value(t, scrape(t, hs.URL+"/metrics"), "hioload_batch_size", nil))
}

// TestDebugMuxNoPprof is issue #14's point 9: the debug mux served the
// profiles, goroutine dumps and the command line to anyone who could reach
// the metrics listener. Without HandlePprof, none of them is there.
func TestDebugMuxNoPprof(t *testing.T) {
	srv := start(t, func(cfg *ws.Config) { cfg.Workers = 1 }, nil)
	hs := httptest.NewServer(wsmetrics.NewDebugMux(srv, nil))
	defer hs.Close()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/debug/pprof/cmdline",
		"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	for _, path := range []string{"/metrics", "/debug/probes"} {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}

// debugServer serves mux with NewHTTPServer's settings and the given write
// timeout (0: its own).
func debugServer(t *testing.T, mux *http.ServeMux, write time.Duration) *httptest.Server {
	hs := httptest.NewUnstartedServer(mux)
	hs.Config = wsmetrics.NewHTTPServer(mux)
	if write > 0 {
		hs.Config.WriteTimeout = write
	}
	hs.Start()
	t.Cleanup(hs.Close)
	return hs
}

// TestPprofOutlastsWriteTimeout: a CPU profile or a trace takes longer
// than the listener's write timeout allows a response; they extend their
// own deadline by their duration.
func TestPprofOutlastsWriteTimeout(t *testing.T) {
	mux := http.NewServeMux()
	wsmetrics.HandlePprof(mux)
	hs := debugServer(t, mux, 300*time.Millisecond)
	for _, path := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err, path)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.NotEmpty(t, body, path)
	}
}

// TestDebugMuxPprof: HandlePprof serves the profiles on the debug mux, and
// nothing is registered on http.DefaultServeMux.
func TestDebugMuxPprof(t *testing.T) {
	srv := start(t, func(cfg *ws.Config) { cfg.Workers = 1 }, nil)
	mux := wsmetrics.NewDebugMux(srv, nil)
	wsmetrics.HandlePprof(mux)
	hs := debugServer(t, mux, 0)
	type result struct {
		status int
		body   string
		err    error
	}
	pages := map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/heap?debug=1":      "heap profile:",
		"/debug/pprof/cmdline":           "wsmetrics.test",
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

// TestProbesPage: /debug/probes is Control.Stats as JSON, probes included;
// a probe that cannot be encoded shows its error, and the page still works.
func TestProbesPage(t *testing.T) {
	srv := start(t, func(cfg *ws.Config) { cfg.Workers = 2 }, nil)
	ctrl := srv.GetControl()
	var hits atomic.Int64
	ctrl.RegisterDebugProbe("answer", func() any { return 42 })
	ctrl.RegisterDebugProbe("hits", func() any { return hits.Add(1) })
	ctrl.RegisterDebugProbe("broken", func() any { return func() {} }) // not JSON
	require.Equal(t, "x", string(echo(t, dial(t, srv), []byte("x"))))
	ctrl.Stats() // hits: 1

	hs := httptest.NewServer(wsmetrics.NewDebugMux(srv, nil))
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/debug/probes")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var page map[string]json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	require.JSONEq(t, "42", string(page["answer"]))
	require.JSONEq(t, "2", string(page["hits"]))
	require.Contains(t, string(page["broken"]), `"error"`, "a bad probe shows its error, the page still works")
	var sv struct {
		MessagesIn uint64
		Loops      []struct{ Loop, CPU, Node int }
	}
	require.NoError(t, json.Unmarshal(page[ws.StatsServer], &sv))
	require.Equal(t, uint64(1), sv.MessagesIn)
	require.Len(t, sv.Loops, 2)
	require.Contains(t, page, ws.StatsNodes)
	require.Contains(t, page, ws.StatsHandler)
	require.Contains(t, page, ws.StatsLimits)
	var pools []struct {
		Node    int
		Classes []struct{ Size, Capacity, InUse int }
	}
	require.NoError(t, json.Unmarshal(page[ws.StatsPools], &pools))
	require.Len(t, pools, len(srv.PoolStats()))

}

// TestHTTPServerTimeouts: NewHTTPServer bounds every phase of a
// connection, so that idle keep-alive connections and slow clients cannot
// pile up on the debug listener (issue #14's point 9: its idle
// connections never timed out). The timeouts are shortened here to show
// them act.
func TestHTTPServerTimeouts(t *testing.T) {
	hs := wsmetrics.NewHTTPServer(http.NotFoundHandler())
	require.Equal(t, 5*time.Second, hs.ReadHeaderTimeout)
	require.Equal(t, 10*time.Second, hs.ReadTimeout)
	require.Equal(t, 30*time.Second, hs.WriteTimeout)
	require.Equal(t, 60*time.Second, hs.IdleTimeout)
	require.Equal(t, 16<<10, hs.MaxHeaderBytes)

	hs.IdleTimeout, hs.ReadHeaderTimeout = 200*time.Millisecond, 200*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go hs.Serve(ln)
	defer hs.Close()
	for _, tc := range []struct {
		name, req string
		answered  bool
	}{
		{"idle keep-alive", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"half a header", "GET / HTTP/1.1\r\nHost: x\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte(tc.req))
			require.NoError(t, err)
			br := bufio.NewReader(c)
			if tc.answered {
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err)
				io.Copy(io.Discard, resp.Body)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, br)
			require.NoError(t, err, "the server must close the connection (EOF), not leave it open")
		})
	}
}
