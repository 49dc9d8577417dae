package ws

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

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
	fds := openFDs(t)
	for i := 0; i < 20; i++ {
		c := wstest.Dial(t, srv.Addr().String())
		f := wstest.Text(bytes.Repeat([]byte("x"), 5000))
		c.Write(t, f[:len(f)/2]) // half a frame, then RST
		time.Sleep(time.Millisecond)
		reset(c)
	}
	check()
	waitConns(t, srv, 1)
	require.LessOrEqual(t, settle(fds, func() int { return openFDs(t) }), fds)
}

// TestFaultHalfClose: a client that sends and then shuts its write side
// still gets every echo, then the server closes.
func TestFaultHalfClose(t *testing.T) {
	srv, check := faultServer(t)
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
}

// TestFaultNeverAnswersClose: the server fails a connection (1002) and the
// client never answers the close or closes; the server drops it after the
// linger timeout.
func TestFaultNeverAnswersClose(t *testing.T) {
	srv, check := faultServer(t)
	fds := openFDs(t)
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	c.Write(t, wstest.Frame{Fin: true, Op: 3}.Bytes()) // reserved opcode: 1002
	f := c.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusProtocolError, StatusCode(binary.BigEndian.Uint16(f.Payload)))
	// Say nothing, close nothing: the server must give up on its own.
	waitConns(t, srv, 1)
	check()
	// Only the client's own socket is left open.
	require.LessOrEqual(t, settle(fds+1, func() int { return openFDs(t) }), fds+1)
}

// TestFaultManyClientsVanish: 200 clients, mid-conversation, all reset at
// once; the server frees every connection and its buffers, and the good
// client never notices.
func TestFaultManyClientsVanish(t *testing.T) {
	srv, check := faultServer(t)
	fds := openFDs(t)
	inUse := srv.PoolsInUse()
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
	require.LessOrEqual(t, settle(fds, func() int { return openFDs(t) }), fds)
	require.LessOrEqual(t, settle(inUse, srv.PoolsInUse), inUse, "pool buffers held by vanished clients")
}
