package ws

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
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

func TestMaxConnsCloses1013(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConns = 3
	srv := startServer(t, cfg, echoHandler)
	for i := 0; i < 3; i++ {
		_, resp := rawUpgrade(t, srv.Addr().String(), "")
		require.Equal(t, 101, resp.StatusCode)
	}
	c, resp := rawUpgrade(t, srv.Addr().String(), "")
	require.Equal(t, 101, resp.StatusCode)
	f := c.Next(t)
	require.Equal(t, OpClose, f.Op)
	require.Equal(t, StatusTryAgainLater, StatusCode(binary.BigEndian.Uint16(f.Payload)))
	require.Equal(t, uint64(1), srv.Stats().OverCap)
}

func TestMaxConnsPerIP429(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnsPerIP = 2
	srv := startServer(t, cfg, echoHandler)
	var first *wstest.Client
	for i := 0; i < 2; i++ {
		c, resp := rawUpgrade(t, srv.Addr().String(), "")
		require.Equal(t, 101, resp.StatusCode)
		first = c
	}
	_, resp := rawUpgrade(t, srv.Addr().String(), "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	// Closing one frees a place for the address.
	first.Close()
	require.Eventually(t, func() bool {
		nc, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			return false
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		return wstest.NewClient(nc).Handshake(srv.Addr().String()) == nil
	}, 5*time.Second, 50*time.Millisecond)
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
