package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// rawUpgrade sends an upgrade request with extra header lines and returns
// the client and the response, whatever its status.
func rawUpgrade(t *testing.T, addr, extra string) (*wstest.Client, *http.Response) {
	t.Helper()
	c := wstest.DialRaw(t, addr)
	c.Write(t, []byte(strings.TrimSuffix(wstest.Request(addr, wstest.NewKey()), "\r\n")+extra+"\r\n"))
	require.NoError(t, c.Conn().SetReadDeadline(time.Now().Add(wstest.Timeout)))
	resp, err := c.ReadResponse(nil)
	require.NoError(t, err)
	return c, resp
}

// dialFrom opens a bare TCP connection to addr from the loopback address
// local (127.0.0.0/8 is all loopback), so that tests can be several client
// addresses. It returns nil when the server reset the connection so fast
// that connect saw it.
func dialFrom(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: wstest.Timeout}
	nc, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// refusedAtAccept reports whether the server reset nc without a word
// within a second (a connection it admitted stays silent: it waits for a
// handshake).
func refusedAtAccept(nc net.Conn) bool {
	if nc == nil {
		return true
	}
	nc.SetReadDeadline(time.Now().Add(time.Second))
	_, err := nc.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// countRefused checks the connections at once and counts those reset.
func countRefused(ncs []net.Conn) int {
	var n atomic.Int32
	var wg sync.WaitGroup
	for _, nc := range ncs {
		wg.Go(func() {
			if refusedAtAccept(nc) {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load())
}

// TestAdmissionAtAccept is issue 14's point 3: the connection caps count
// TCP connections from accept, so that one address holding bare
// connections cannot lock the others out. With MaxConns 20 and
// MaxConnsPerIP 5, 20 bare connections from 127.0.0.2 get 5 places and 15
// resets; a client from 127.0.0.1 is served. (Before, the caps were
// checked after the handshake: the bare connections filled MaxConns and
// every other client got 1013.)
func TestAdmissionAtAccept(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConns = 20
	cfg.MaxConnsPerIP = 5
	srv := startServer(t, cfg, echoHandler)
	addr := srv.Addr().String()
	var bare []net.Conn
	for range 20 {
		bare = append(bare, dialFrom(t, addr, "127.0.0.2"))
	}
	require.Equal(t, 15, countRefused(bare), "connections past the per-address cap must be reset at accept")
	require.EqualValues(t, 15, srv.Stats().Refused)
	good := wstest.Dial(t, addr)
	good.Write(t, wstest.Text([]byte("served")))
	good.ExpectMessage(t, OpText, []byte("served"))
	// Closing the address's connections frees places for it.
	closeAll(bare)
	eventuallyUpgrades(t, addr, "127.0.0.2")
}

// TestMaxConnsAtAccept: past MaxConns, over all addresses, a connection is
// reset at accept; the caps count connections, not handshakes.
func TestMaxConnsAtAccept(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConns = 3
	srv := startServer(t, cfg, echoHandler)
	addr := srv.Addr().String()
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		dialFrom(t, addr, ip)
	}
	require.Eventually(t, func() bool { return srv.Stats().Accepted == 3 }, 5*time.Second, 10*time.Millisecond)
	require.True(t, refusedAtAccept(dialFrom(t, addr, "127.0.0.1")))
	require.EqualValues(t, 1, srv.Stats().Refused)
}

// TestMaxHandshakesPerIP: connections still handshaking have their own
// caps; an upgraded connection leaves them, so an address can hold many
// WebSocket connections but only a few silent ones.
func TestMaxHandshakesPerIP(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHandshakes = 6
	cfg.MaxHandshakesPerIP = 2
	srv := startServer(t, cfg, echoHandler)
	addr := srv.Addr().String()
	for range 5 { // upgraded: no longer handshaking
		wstest.Dial(t, addr)
	}
	// One address: two places, the third connection is reset (whichever
	// the loops take last).
	silent := dialEach(t, srv, addr, "127.0.0.2", "127.0.0.2", "127.0.0.2")
	require.Equal(t, 1, countRefused(silent), "an address's third silent connection")
	// Four more from two addresses fill MaxHandshakes; a fifth address
	// finds no place.
	silent = append(silent, dialEach(t, srv, addr, "127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4")...)
	require.True(t, refusedAtAccept(dialFrom(t, addr, "127.0.0.5")), "past MaxHandshakes over all addresses")
	require.EqualValues(t, 2, srv.Stats().Refused)
	closeAll(silent)
	eventuallyUpgrades(t, addr, "127.0.0.6")
}

// closeAll closes the connections dialFrom opened (nil: refused).
func closeAll(ncs []net.Conn) {
	for _, nc := range ncs {
		if nc != nil {
			nc.Close()
		}
	}
}

// eventuallyUpgrades waits until a client from local is let in and
// upgraded (places freed by closed connections are counted back as the
// server sees them close).
func eventuallyUpgrades(t *testing.T, addr, local string) {
	t.Helper()
	require.Eventually(t, func() bool {
		nc := dialFrom(t, addr, local)
		if nc == nil {
			return false
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		return wstest.NewClient(nc).Handshake(addr) == nil
	}, 5*time.Second, 50*time.Millisecond)
}

// dialEach dials once from each local address and waits until the server
// has accepted or refused them all, so that the next dials find them
// counted.
func dialEach(t *testing.T, srv *Server, addr string, locals ...string) []net.Conn {
	t.Helper()
	st := srv.Stats()
	before := st.Accepted + st.Refused
	var ncs []net.Conn
	for _, ip := range locals {
		ncs = append(ncs, dialFrom(t, addr, ip))
	}
	require.Eventually(t, func() bool {
		st := srv.Stats()
		return st.Accepted+st.Refused >= before+uint64(len(locals))
	}, 5*time.Second, 5*time.Millisecond)
	return ncs
}

func TestAllowedOrigins403(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AllowedOrigins = []string{"https://good.example"}
	srv := startServer(t, cfg, echoHandler)
	for _, tc := range []struct {
		header string
		status int
	}{
		{"Origin: https://good.example\r\n", 101},
		{"Origin: HTTPS://GOOD.EXAMPLE\r\n", 101},
		{"", 101}, // not a browser
		{"Origin: https://evil.example\r\n", 403},
		{"Origin: null\r\n", 403},
	} {
		_, resp := rawUpgrade(t, srv.Addr().String(), tc.header)
		require.Equal(t, tc.status, resp.StatusCode, "%q", tc.header)
	}
}

// TestIdleTimeoutPingsThenCloses: a silent client gets a ping after half
// the idle timeout and close 1001 at the timeout; a client that answers the
// ping stays.
func TestIdleTimeoutPingsThenCloses(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 2 * time.Second
	srv := startServer(t, cfg, echoHandler)
	silent := wstest.Dial(t, srv.Addr().String())
	defer silent.Close()
	live := wstest.Dial(t, srv.Addr().String())
	defer live.Close()

	done := make(chan struct{})
	go func() { // the live client answers every ping
		defer close(done)
		live.Conn().SetDeadline(time.Now().Add(6 * time.Second))
		for {
			f, err := live.ReadFrame()
			if err != nil {
				return
			}
			if f.Op == OpPing {
				live.Conn().Write(wstest.Pong(f.Payload))
			}
			if f.Op == OpClose {
				t.Errorf("live client closed with %x", f.Payload)
				return
			}
		}
	}()

	t0 := time.Now()
	require.Equal(t, OpPing, silent.Next(t).Op)
	require.GreaterOrEqual(t, time.Since(t0), 700*time.Millisecond, "ping before half the idle timeout")
	f := silent.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusGoingAway, StatusCode(binary.BigEndian.Uint16(f.Payload)))
	require.True(t, strings.Contains(string(f.Payload), "idle"))
	live.Close() // it outlived the silent one by answering pings
	<-done
	require.GreaterOrEqual(t, srv.Stats().Timeouts, uint64(1))
}

// TestMemoryExhaustionRefusesCleanly: with a tiny pool and heap budget, a
// message the server has no memory for is refused with 1013, the memory is
// given back, and another client on the same loop is served throughout.
func TestMemoryExhaustionRefusesCleanly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	// The 256 KiB class holds the read buffer (128 KiB and its headroom)
	// and the start of the reassembly.
	cfg.PoolClasses = []hugepage.Class{{Size: 4096, Count: 16}, {Size: 256 << 10, Count: 2}}
	cfg.MaxHeapBytes = 256 << 10
	srv := startServer(t, cfg, echoHandler)
	good := wstest.Dial(t, srv.Addr().String())
	defer good.Close()
	big := wstest.Dial(t, srv.Addr().String())
	defer big.Close()
	big.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second))

	// 2 MiB in 64 KiB fragments: reassembly outgrows pool and budget.
	chunk := bytes.Repeat([]byte{'z'}, 64<<10)
	for i := 0; i < 32; i++ {
		if _, err := big.Conn().Write(wstest.Data(map[bool]OpCode{true: OpBinary, false: gws.OpContinuation}[i == 0], i == 31, chunk)); err != nil {
			break // the server may have closed already
		}
		if i == 8 {
			good.Write(t, wstest.Text([]byte("still served")))
			good.ExpectMessage(t, OpText, []byte("still served"))
		}
	}
	f := big.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusTryAgainLater, StatusCode(binary.BigEndian.Uint16(f.Payload)))
	// Given back, but for what a loop keeps for reuse: at most a quarter
	// of the budget.
	require.Eventually(t, func() bool { return srv.Stats().HeapBytes <= cfg.MaxHeapBytes/4 }, 5*time.Second, 10*time.Millisecond, "heap buffers not given back")
	var refused uint64
	for _, l := range srv.Stats().Loops {
		refused += l.MemRefused
	}
	require.NotZero(t, refused)
	good.Write(t, wstest.Text([]byte("after")))
	good.ExpectMessage(t, OpText, []byte("after"))
}
