package ws

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// stallWriter is a log destination that blocks every Write until the test
// releases it, like a pipe nobody reads.
type stallWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	calls   chan struct{} // a Write has started
	release chan struct{} // closed: Writes go through
	err     error         // returned by every Write (after the bytes are kept)
}

func newStallWriter() *stallWriter {
	return &stallWriter{calls: make(chan struct{}, 100), release: make(chan struct{})}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.calls <- struct{}{}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	return len(p), w.err
}

func (w *stallWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func closeSink(t *testing.T, s *LogSink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx), "the sink's goroutine must end")
}

// TestLogSinkStalled: with the destination blocked, Write returns at once;
// what fits in the buffer waits, the rest is dropped and counted; when the
// destination moves again the buffered lines arrive whole and in order.
func TestLogSinkStalled(t *testing.T) {
	w := newStallWriter()
	s := NewLogSink(w, 100)
	s.Write([]byte("line 00\n")) // the writer takes it and blocks in w.Write
	<-w.calls
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 30; i++ {
			fmt.Fprintf(s, "line %02d\n", i) // 8 bytes each: 12 fit in 100
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a stalled destination")
	}
	require.Equal(t, uint64(30-12), s.Dropped())
	close(w.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Flush(ctx))
	var want bytes.Buffer
	for i := 0; i <= 12; i++ {
		fmt.Fprintf(&want, "line %02d\n", i)
	}
	require.Equal(t, want.String(), w.String())
	closeSink(t, s)
	s.Write([]byte("after close\n"))
	require.Equal(t, uint64(30-12+1), s.Dropped(), "a write after Close is dropped")
}

// TestLogSinkStalledClose: Flush and Close give up when their context
// ends, so that a process can exit with its log reader stuck.
func TestLogSinkStalledClose(t *testing.T) {
	w := newStallWriter()
	s := NewLogSink(w, 0)
	s.Write([]byte("stuck\n"))
	<-w.calls
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Flush(ctx), context.DeadlineExceeded)
	require.ErrorIs(t, s.Close(ctx), context.DeadlineExceeded)
	close(w.release) // the goroutine ends once its write returns
	closeSink(t, s)
}

// TestLogSinkFailingDestination: lines the destination refuses (EPIPE from
// a vanished reader) are counted as dropped, and the sink goes on.
func TestLogSinkFailingDestination(t *testing.T) {
	w := newStallWriter()
	close(w.release)
	w.err = syscall.EPIPE
	s := NewLogSink(w, 0)
	for range 5 {
		s.Write([]byte("lost\n"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Flush(ctx))
	require.Equal(t, uint64(5), s.Dropped())
	closeSink(t, s)
}

// TestLogSinkInStats: with WithLogSink, the sink's drops are in Stats, and
// a server whose log destination is stalled serves clients anyway.
func TestLogSinkInStats(t *testing.T) {
	w := newStallWriter()
	sink := NewLogSink(w, 1024)
	t.Cleanup(func() { close(w.release); closeSink(t, sink) })
	cfg := DefaultConfig()
	cfg.ListenAddr, cfg.Workers = "127.0.0.1:0", 1
	var level slog.LevelVar
	level.Set(slog.LevelDebug)
	cfg.Logger = slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: &level}))
	srv, err := NewServer(cfg, WithLogSink(sink), WithMiddleware(Logging(cfg.Logger)))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Run(echoHandler) }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	for range 50 {
		c := wstest.Dial(t, srv.Addr().String())
		c.Write(t, wstest.Text([]byte("hi")))
		c.ExpectMessage(t, OpText, []byte("hi"))
		c.Close()
	}
	require.Positive(t, srv.Stats().LogDropped)
	// The server may still be logging the last close: the two counts agree
	// once it is done (read together, not one after the other).
	require.Eventually(t, func() bool { return sink.Dropped() == srv.Stats().LogDropped && srv.Stats().Connections == 0 },
		5*time.Second, 10*time.Millisecond, "Stats().LogDropped is the sink's count")
}

// TestLoggingQuietAtInfo: at info level a client's open, messages and
// close log nothing (a connection flood is no log flood); at debug they
// do.
func TestLoggingQuietAtInfo(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string
	}{{slog.LevelInfo, nil}, {slog.LevelDebug, []string{"ws: open", "ws: message", "ws: close"}}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var mu sync.Mutex
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: tc.level}))
			cfg := DefaultConfig()
			cfg.ListenAddr, cfg.Workers = "127.0.0.1:0", 1
			srv, err := NewServer(cfg, WithMiddleware(Logging(log)))
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- srv.Run(echoHandler) }()
			c := wstest.Dial(t, srv.Addr().String())
			c.Write(t, wstest.Text([]byte("hi")))
			c.ExpectMessage(t, OpText, []byte("hi"))
			c.Write(t, wstest.Close(1000, ""))
			c.Next(t)
			c.ExpectEOF(t)
			c.Close()                          // the server's side need not linger for our FIN
			require.NoError(t, srv.Shutdown()) // the loops are gone: every line is written
			require.NoError(t, <-done)
			mu.Lock()
			out := buf.String()
			mu.Unlock()
			if tc.want == nil {
				require.Empty(t, out)
			}
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestLogLimiter: a burst passes about logBurst lines, and the next line
// let through says how many were held back.
func TestLogLimiter(t *testing.T) {
	var l logLimiter
	passed := 0
	for range 1000 {
		if _, ok := l.allow(); ok {
			passed++
		}
	}
	require.GreaterOrEqual(t, passed, logBurst)
	require.LessOrEqual(t, passed, logBurst+1)
	time.Sleep(time.Second / logBurst * 2)
	skipped, ok := l.allow()
	require.True(t, ok, "a line passes once the period is over")
	require.Equal(t, uint64(1000-passed), skipped)
}
