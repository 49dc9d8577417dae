package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// rawUpgrade sends an upgrade request with extra header lines and returns
// the response status line and headers.
func rawUpgrade(t *testing.T, addr, extra string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", extra)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	return c, r, resp
}

func TestMaxConnsCloses1013(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConns = 3
	srv := startServer(t, cfg, echoHandler)
	for i := 0; i < 3; i++ {
		_, _, resp := rawUpgrade(t, srv.Addr().String(), "")
		require.Equal(t, 101, resp.StatusCode)
	}
	_, r, resp := rawUpgrade(t, srv.Addr().String(), "")
	require.Equal(t, 101, resp.StatusCode)
	h, p := readFrame(t, r)
	require.Equal(t, OpClose, h.OpCode)
	require.Equal(t, StatusTryAgainLater, StatusCode(binary.BigEndian.Uint16(p)))
	require.Equal(t, uint64(1), srv.Stats().OverCap)
}

func TestMaxConnsPerIP429(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnsPerIP = 2
	srv := startServer(t, cfg, echoHandler)
	var first net.Conn
	for i := 0; i < 2; i++ {
		c, _, resp := rawUpgrade(t, srv.Addr().String(), "")
		require.Equal(t, 101, resp.StatusCode)
		first = c
	}
	_, _, resp := rawUpgrade(t, srv.Addr().String(), "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	// Closing one frees a place for the address.
	first.Close()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == 101
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
		_, _, resp := rawUpgrade(t, srv.Addr().String(), tc.header)
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
	silent := dialWS(t, srv.Addr().String())
	defer silent.Close()
	live := dialWS(t, srv.Addr().String())
	defer live.Close()

	done := make(chan struct{})
	go func() { // the live client answers every ping
		defer close(done)
		live.SetDeadline(time.Now().Add(6 * time.Second))
		r := bufio.NewReader(live)
		for {
			h, err := readHeader(r)
			if err != nil {
				return
			}
			p := make([]byte, h.Length)
			io.ReadFull(r, p)
			if h.OpCode == OpPing {
				live.Write(maskedFrame(OpPong, true, p))
			}
			if h.OpCode == OpClose {
				t.Errorf("live client closed with %x", p)
				return
			}
		}
	}()

	silent.SetDeadline(time.Now().Add(6 * time.Second))
	t0 := time.Now()
	r := bufio.NewReader(silent)
	h, _ := readFrame(t, r)
	require.Equal(t, OpPing, h.OpCode)
	require.GreaterOrEqual(t, time.Since(t0), 700*time.Millisecond, "ping before half the idle timeout")
	h, p := readFrame(t, r)
	require.Equal(t, OpClose, h.OpCode)
	require.Equal(t, StatusGoingAway, StatusCode(binary.BigEndian.Uint16(p)))
	require.True(t, strings.Contains(string(p), "idle"))
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
	cfg.PoolClasses = []hugepage.Class{{Size: 4096, Count: 16}, {Size: 128 << 10, Count: 2}}
	cfg.MaxHeapBytes = 256 << 10
	srv := startServer(t, cfg, echoHandler)
	good := dialWS(t, srv.Addr().String())
	defer good.Close()
	big := dialWS(t, srv.Addr().String())
	defer big.Close()
	big.SetDeadline(time.Now().Add(10 * time.Second))
	good.SetDeadline(time.Now().Add(10 * time.Second))

	// 2 MiB in 64 KiB fragments: reassembly outgrows pool and budget.
	chunk := bytes.Repeat([]byte{'z'}, 64<<10)
	for i := 0; i < 32; i++ {
		if _, err := big.Write(maskedFrame(map[bool]OpCode{true: OpBinary, false: gws.OpContinuation}[i == 0], i == 31, chunk)); err != nil {
			break // the server may have closed already
		}
		if i == 8 {
			good.Write(maskedFrame(OpText, true, []byte("still served")))
			_, p := readFrame(t, good)
			require.Equal(t, "still served", string(p))
		}
	}
	h, p := readFrame(t, big)
	require.Equal(t, OpClose, h.OpCode)
	require.Equal(t, StatusTryAgainLater, StatusCode(binary.BigEndian.Uint16(p)))
	// Given back, but for what a loop keeps for reuse: at most a quarter
	// of the budget.
	require.Eventually(t, func() bool { return srv.Stats().HeapBytes <= cfg.MaxHeapBytes/4 }, 5*time.Second, 10*time.Millisecond, "heap buffers not given back")
	var refused uint64
	for _, l := range srv.Stats().Loops {
		refused += l.MemRefused
	}
	require.NotZero(t, refused)
	good.Write(maskedFrame(OpText, true, []byte("after")))
	_, p = readFrame(t, good)
	require.Equal(t, "after", string(p))
}
