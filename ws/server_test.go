package ws

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/reactor"
)

var echoHandler = HandlerFunc(func(e *Event) error {
	if e.Kind == MessageEvent {
		return e.Conn.WriteMessage(e.Op, e.Data)
	}
	return nil
})

// runServer runs a server on 127.0.0.1:0; what Run returns arrives on the
// channel. The test shuts it down.
func runServer(t testing.TB, cfg Config, h Handler, opts ...Option) (*Server, <-chan error) {
	t.Helper()
	cfg.ListenAddr = "127.0.0.1:0"
	srv, err := NewServer(cfg, opts...)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Run(h) }()
	return srv, done
}

// startServer runs a server on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, cfg Config, h Handler, opts ...Option) *Server {
	t.Helper()
	srv, done := runServer(t, cfg, h, opts...)
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown(), "a graceful shutdown: every client answered its close")
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after Shutdown")
		}
	})
	return srv
}

// settle waits (bounded) until f reports a count at or below want.
func settle(want int, f func() int) int {
	var n int
	for i := 0; i < 100; i++ {
		if n = f(); n <= want {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// TestShutdownReleasesEverything: after Shutdown every client got close
// 1001, and no goroutine or descriptor of the server is left.
func TestShutdownReleasesEverything(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		t.Skip("reactor is Linux-only")
	}
	fds0, g0 := testenv.OpenHandles(t), runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.Workers = 2
	srv, done := runServer(t, cfg, echoHandler)

	const n = 20
	clients := make([]*wstest.Client, n)
	for i := range clients {
		clients[i] = wstest.Dial(t, srv.Addr().String())
		clients[i].Write(t, wstest.Text([]byte("ping")))
		f := clients[i].Next(t)
		require.Equal(t, OpText, f.Op)
		require.Equal(t, "ping", string(f.Payload))
	}
	require.Eventually(t, func() bool { return srv.Stats().Connections == n }, 5*time.Second, 10*time.Millisecond)

	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			f := c.Next(t)
			require.Equal(t, OpClose, f.Op)
			require.Equal(t, StatusGoingAway, StatusCode(binary.BigEndian.Uint16(f.Payload)))
			c.Conn().Write(wstest.Data(OpClose, true, f.Payload[:2])) // answer the close
			c.ExpectEOF(t)
		}()
	}
	require.NoError(t, srv.Shutdown())
	require.NoError(t, <-done)
	wg.Wait()
	require.Equal(t, int64(0), srv.Stats().Connections)
	require.Zero(t, srv.PoolsInUse(), "pool buffers still in use after shutdown")
	require.LessOrEqual(t, settle(fds0, func() int { return testenv.OpenHandles(t) }), fds0, "descriptors left open")
	require.LessOrEqual(t, settle(g0, runtime.NumGoroutine), g0, "goroutines left running")
}

// TestLoopThreadsPinned reads /proc/self/task/*/ for the loop threads: each
// is named reactor-N and allowed exactly the CPU its plan names.
func TestLoopThreadsPinned(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reactor is Linux-only")
	}
	cfg := DefaultConfig()
	cfg.Workers = 2
	srv := startServer(t, cfg, echoHandler)
	loops := srv.engine.Loops()
	require.Eventually(t, func() bool {
		for _, l := range loops {
			if l.TID() == 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	for _, l := range loops {
		dir := fmt.Sprintf("/proc/self/task/%d/", l.TID())
		comm, err := os.ReadFile(dir + "comm")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("reactor-%d", l.Index()), strings.TrimSpace(string(comm)))
		status, err := os.ReadFile(dir + "status")
		require.NoError(t, err)
		require.NotEqual(t, os.Getpid(), l.TID(), "a loop runs on the main thread")
		if l.Spec().CPU >= 0 {
			require.Contains(t, string(status), fmt.Sprintf("Cpus_allowed_list:\t%d\n", l.Spec().CPU))
		}
	}
}

// TestEchoAllocsPerMessage measures heap allocations per echoed message in
// the steady state, over loopback, with a client that allocates nothing.
func TestEchoAllocsPerMessage(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	cfg := DefaultConfig()
	cfg.Workers = 1
	srv := startServer(t, cfg, echoHandler)
	allocs := echoAllocs(t, srv.Addr().String(), 16, 64, 2000)
	t.Logf("heap allocations per echoed message: %.4f", allocs)
	require.Less(t, allocs, 0.01)
}

// echoAllocs pipelines batches of inFlight messages of size bytes on one
// connection, rounds times, and returns mallocs per message.
func echoAllocs(t testing.TB, addr string, inFlight, size, rounds int) float64 {
	c := wstest.Dial(t, addr)
	defer c.Close()
	payload := bytes.Repeat([]byte{'a'}, size)
	frame := wstest.Binary(payload)
	batch := bytes.Repeat(frame, inFlight)
	want := 2 + len(payload)
	if size >= 126 {
		want += 2
	}
	in := make([]byte, want*inFlight)
	round := func() {
		if _, err := c.Conn().Write(batch); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.Reader(), in); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		round() // warm up: buffers, maps, scheduler
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < rounds; i++ {
		round()
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(rounds*inFlight)
}

// BenchmarkEchoLoopback echoes pipelined messages over loopback through a
// one-loop server and reports heap allocations per echoed message (client
// and server share the process; the client allocates nothing per message).
func BenchmarkEchoLoopback(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(wstest.SizeName(size), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Workers = 1
			srv := startServer(b, cfg, echoHandler)
			c := wstest.Dial(b, srv.Addr().String())
			defer c.Close()
			const inFlight = 16
			frame := wstest.Binary(make([]byte, size))
			batch := bytes.Repeat(frame, inFlight)
			hdr := 2
			if size >= 126 {
				hdr = 4
			}
			in := make([]byte, (hdr+size)*inFlight)
			b.SetBytes(int64(size * inFlight))
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for b.Loop() {
				c.Conn().Write(batch)
				io.ReadFull(c.Reader(), in)
			}
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N*inFlight), "allocs/msg")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*inFlight), "ns/msg")
		})
	}
}

func TestHandshakeTimeoutDropsSilentClient(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HandshakeTimeout = 300 * time.Millisecond
	srv := startServer(t, cfg, echoHandler)
	c, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // and never the rest
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, isTimeout(err), "the server kept a stalled handshake open: %v", err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestSlowConsumerGets1008: a client that sends but never reads is closed
// with 1008 once its queued replies pass MaxWriteQueue, and a well-behaved
// client on the same loop is not held up.
func TestSlowConsumerGets1008(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.MaxWriteQueue = 256 << 10
	cfg.LingerTimeout = 500 * time.Millisecond
	srv := startServer(t, cfg, echoHandler)
	slow := wstest.Dial(t, srv.Addr().String())
	defer slow.Close()
	good := wstest.Dial(t, srv.Addr().String())
	defer good.Close()

	msg := wstest.Binary(make([]byte, 32<<10))
	slow.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	closed := false
	for i := 0; i < 2000 && !closed; i++ {
		if _, err := slow.Conn().Write(msg); err != nil {
			closed = true // the server gave up on us: expected
		}
		if i%50 == 0 {
			good.Write(t, wstest.Text([]byte("still here")))
			good.ExpectMessage(t, OpText, []byte("still here"))
		}
		if srv.Stats().ClosesSent > 0 {
			closed = true
		}
	}
	require.True(t, closed, "server never closed the slow consumer")
	// Now read: echoes, then the 1008 close frame.
	for {
		f := slow.Next(t)
		if f.Op == OpClose {
			require.Equal(t, StatusPolicyViolation, StatusCode(binary.BigEndian.Uint16(f.Payload)))
			break
		}
		require.Equal(t, OpBinary, f.Op)
	}
}

// TestRecoveryClosesWith1011 checks that a panicking handler costs only its
// own connection: the client gets 1011 and other clients go on.
func TestRecoveryClosesWith1011(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	h := HandlerFunc(func(e *Event) error {
		if e.Kind == MessageEvent && string(e.Data) == "boom" {
			panic("handler bug")
		}
		return echoHandler(e)
	})
	srv := startServer(t, cfg, h, WithMiddleware(Recovery(discardLogger())))
	bad := wstest.Dial(t, srv.Addr().String())
	defer bad.Close()
	good := wstest.Dial(t, srv.Addr().String())
	defer good.Close()
	bad.Write(t, wstest.Text([]byte("boom")))
	f := bad.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusInternalError, StatusCode(binary.BigEndian.Uint16(f.Payload)))
	good.Write(t, wstest.Text([]byte("fine")))
	good.ExpectMessage(t, OpText, []byte("fine"))
}

func TestSendFromAnotherGoroutine(t *testing.T) {
	cfg := DefaultConfig()
	conns := make(chan *Conn, 1)
	h := HandlerFunc(func(e *Event) error {
		if e.Kind == OpenEvent {
			conns <- e.Conn
		}
		return nil
	})
	srv := startServer(t, cfg, h)
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	sc := <-conns
	for i := 0; i < 100; i++ {
		require.NoError(t, sc.Send(OpText, []byte(fmt.Sprintf("push %d", i))))
	}
	for i := 0; i < 100; i++ {
		c.ExpectMessage(t, OpText, []byte(fmt.Sprintf("push %d", i)))
	}
	require.NoError(t, sc.CloseAsync(StatusNormalClosure))
	f := c.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusNormalClosure, StatusCode(binary.BigEndian.Uint16(f.Payload)))
}

// TestCloseEventErr: a closing handshake that ends with the client's FIN is
// a clean close (Err nil, with the code); a client that vanishes without a
// close frame is 1006 with the transport's reason; so is a close frame the
// client never follows with its FIN (the linger timeout cuts it).
func TestCloseEventErr(t *testing.T) {
	closes := make(chan Event, 4)
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.LingerTimeout = 300 * time.Millisecond
	srv := startServer(t, cfg, HandlerFunc(func(e *Event) error {
		if e.Kind == CloseEvent {
			closes <- Event{Code: e.Code, Err: e.Err}
		}
		return nil
	}))
	next := func() Event {
		t.Helper()
		select {
		case e := <-closes:
			return e
		case <-time.After(wstest.Timeout):
			t.Fatal("no CloseEvent")
		}
		return Event{}
	}

	c := wstest.Dial(t, srv.Addr().String())
	c.Write(t, wstest.Close(1000, "bye"))
	c.ExpectClose(t, 1000, true)
	c.Close()
	e := next()
	require.Equal(t, StatusNormalClosure, e.Code)
	require.NoError(t, e.Err, "a clean close")

	c = wstest.Dial(t, srv.Addr().String())
	reset(c)
	e = next()
	require.Equal(t, StatusAbnormalClosure, e.Code)
	require.Error(t, e.Err)

	c = wstest.Dial(t, srv.Addr().String())
	c.Write(t, wstest.Close(1001, ""))
	c.ExpectClose(t, 1001, true) // and no FIN from us
	e = next()
	require.Equal(t, StatusGoingAway, e.Code)
	require.ErrorIs(t, e.Err, reactor.ErrTimeout)
	c.Close()
}
