package ws

import (
	"bytes"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// faultServer runs a one-loop server for fault tests with a short linger,
// and a well-behaved client whose echoes are checked after each fault.
func faultServer(t *testing.T) (*Server, func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.LingerTimeout = 300 * time.Millisecond
	srv := startServer(t, cfg, echoHandler)
	good := wstest.Dial(t, srv.Addr().String())
	n := 0
	check := func() {
		t.Helper()
		n++
		msg := bytes.Repeat([]byte{byte(n)}, 1000+n)
		good.Write(t, wstest.Binary(msg))
		good.ExpectMessage(t, OpBinary, msg)
	}
	return srv, check
}

// held is what a server holds at one moment: descriptors (socket and port
// handles on Windows, counted the same way under wine), goroutines and
// pool buffers in use. After a fault, each must come back to where it was
// before.
type held struct{ fds, goroutines, buffers int }

func holding(t *testing.T, srv *Server) held {
	t.Helper()
	return held{testenv.OpenHandles(t), runtime.NumGoroutine(), srv.PoolsInUse()}
}

// requireReleased waits (bounded) until srv holds no more than before, plus
// extraFDs descriptors the test itself still has open.
func requireReleased(t *testing.T, srv *Server, before held, extraFDs int) {
	t.Helper()
	require.LessOrEqual(t, settle(before.fds+extraFDs, func() int { return testenv.OpenHandles(t) }), before.fds+extraFDs, "descriptors (handles) left open")
	require.LessOrEqual(t, settle(before.goroutines, runtime.NumGoroutine), before.goroutines, "goroutines left running")
	require.LessOrEqual(t, settle(before.buffers, srv.PoolsInUse), before.buffers, "pool buffers held by closed connections")
}

// waitConns waits until the server has want open connections and its
// loop holds no connection state beyond them.
func waitConns(t *testing.T, srv *Server, want int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st := srv.Stats()
		var tcp int64
		for _, l := range st.Loops {
			tcp += l.Conns
		}
		return st.Connections == want && tcp == want
	}, 5*time.Second, 10*time.Millisecond, "connections: %+v", srv.Stats())
}

func reset(c *wstest.Client) {
	c.Conn().(*net.TCPConn).SetLinger(0) // close sends RST
	c.Close()
}

func TestFaultResetMidFrame(t *testing.T) {
	srv, check := faultServer(t)
	before := holding(t, srv)
	for i := 0; i < 20; i++ {
		c := wstest.Dial(t, srv.Addr().String())
		f := wstest.Text(bytes.Repeat([]byte("x"), 5000))
		c.Write(t, f[:len(f)/2]) // half a frame, then RST
		time.Sleep(time.Millisecond)
		reset(c)
	}
	check()
	waitConns(t, srv, 1)
	requireReleased(t, srv, before, 0)
}

// TestFaultHalfClose: a client that sends and then shuts its write side
// still gets every echo, then the server closes.
func TestFaultHalfClose(t *testing.T) {
	srv, check := faultServer(t)
	before := holding(t, srv)
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	var want []byte
	for i := 0; i < 50; i++ {
		p := bytes.Repeat([]byte{byte(i)}, 100*i)
		c.Write(t, wstest.Binary(p))
		want = append(want, p...)
	}
	require.NoError(t, c.Conn().(*net.TCPConn).CloseWrite())
	var got []byte
	for len(got) < len(want) {
		got = append(got, c.Next(t).Payload...)
	}
	require.Equal(t, want, got)
	c.ExpectEOF(t) // the server closes after a half-closed client's echoes
	check()
	waitConns(t, srv, 1)
	requireReleased(t, srv, before, 1) // the client's socket is still open
}

// TestFaultNeverAnswersClose: the server fails a connection (1002) and the
// client never answers the close or closes; the server drops it after the
// linger timeout.
func TestFaultNeverAnswersClose(t *testing.T) {
	srv, check := faultServer(t)
	before := holding(t, srv)
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	c.Write(t, wstest.Frame{Fin: true, Op: 3}.Bytes()) // reserved opcode: 1002
	f := c.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusProtocolError, StatusCode(binary.BigEndian.Uint16(f.Payload)))
	// Say nothing, close nothing: the server must give up on its own.
	waitConns(t, srv, 1)
	check()
	requireReleased(t, srv, before, 1) // only the client's own socket is left open
}

// TestFaultManyClientsVanish: 200 clients, mid-conversation, all reset at
// once; the server frees every connection and its buffers, and the good
// client never notices.
func TestFaultManyClientsVanish(t *testing.T) {
	srv, check := faultServer(t)
	before := holding(t, srv)
	var wg sync.WaitGroup
	conns := make([]*wstest.Client, 200)
	for i := range conns {
		conns[i] = wstest.Dial(t, srv.Addr().String())
	}
	waitConns(t, srv, 201)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fragmented message in flight, so reassembly buffers are held.
			c.Conn().Write(wstest.Data(OpBinary, false, bytes.Repeat([]byte{1}, 3000)))
			c.Conn().Write(wstest.Data(gws.OpContinuation, false, bytes.Repeat([]byte{2}, 3000)))
		}()
	}
	wg.Wait()
	check()
	for _, c := range conns {
		reset(c)
	}
	waitConns(t, srv, 1)
	check()
	requireReleased(t, srv, before, 0)
}
