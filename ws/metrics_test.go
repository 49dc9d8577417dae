package ws

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// TestHandlerMetricsAllocs: the middleware allocates nothing per message.
func TestHandlerMetricsAllocs(t *testing.T) {
	if testenv.RaceEnabled {
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
	if testenv.RaceEnabled {
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
	t.Cleanup(func() { require.NoError(t, srv.Shutdown()); require.NoError(t, <-done) })
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
