package ws_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// Section A: what the server sends on its own initiative — handler errors,
// application closes, sends from other goroutines, slow consumers — and
// how it treats a client that goes away without a close.

// longReason is 200 bytes of 2-byte code points: too long for a close
// frame, so the server must cut it, and on a code point boundary.
var longReason = strings.Repeat("é", 100)

// appHandler echoes, except for a few text commands.
func appHandler(e *ws.Event) error {
	if e.Kind != ws.MessageEvent {
		return nil
	}
	c := e.Conn
	switch string(e.Data) {
	case "fail":
		return errors.New("handler failed on purpose")
	case "close-3000":
		c.Close(3000, "bye")
		return nil
	case "close-long":
		c.Close(4000, longReason)
		return nil
	case "close-1005":
		c.Close(ws.StatusNoStatusRcvd, "")
		return nil
	case "send-async":
		go func() { _ = c.Send(ws.OpText, []byte("from another goroutine")) }()
		return nil
	case "close-async":
		go func() { _ = c.CloseAsync(4001) }()
		return nil
	}
	return c.WriteMessage(e.Op, e.Data)
}

// expectClosePayload reads a close frame and hands its payload to check,
// then expects EOF.
func expectClosePayload(check func(t testing.TB, p []byte)) step {
	return func(t testing.TB, c *wstest.Client) {
		t.Helper()
		f := c.Next(t)
		require.Equal(t, gws.OpClose, f.Op, "want a close frame, got %v", f)
		require.LessOrEqual(t, len(f.Payload), 125)
		check(t, f.Payload)
		c.ExpectEOF(t)
	}
}

func appCases() []confCase {
	return []confCase{
		{"A.1 handler error closes with 1011", steps(send(wstest.Text([]byte("hello")), wstest.Text([]byte("fail")), wstest.Text([]byte("not echoed"))), expectTextS("hello"), expectFail(1011))},
		{"A.2 application close 3000 with a reason", steps(send(wstest.Text([]byte("close-3000"))), expectClosePayload(func(t testing.TB, p []byte) {
			require.Equal(t, append([]byte{0x0b, 0xb8}, "bye"...), p)
		}))},
		{"A.3 application close, then the client's close reply", steps(send(wstest.Text([]byte("close-3000"))), func(t testing.TB, c *wstest.Client) {
			f := c.Next(t)
			require.Equal(t, gws.OpClose, f.Op)
			c.Write(t, wstest.Close(3000, ""))
			c.ExpectEOF(t)
		})},
		{"A.4 Send from another goroutine", steps(send(wstest.Text([]byte("send-async"))), expectTextS("from another goroutine"), closeNormally())},
		{"A.5 CloseAsync from another goroutine", steps(send(wstest.Text([]byte("close-async"))), expectFail(4001))},
		{"A.6 client half-closes after a 4 MiB message: the echo is delivered, then EOF", steps(
			send(wstest.Binary(bigPayload(false, 4<<20))),
			func(t testing.TB, c *wstest.Client) { require.NoError(t, c.Conn().(*net.TCPConn).CloseWrite()) },
			expectBinary(bigPayload(false, 4<<20)),
			func(t testing.TB, c *wstest.Client) { c.ExpectEOF(t) })},
		{"A.7 client half-closes mid-frame: EOF, nothing else", steps(
			send(wstest.Binary(wstest.Payload(1000, 1))[:500]),
			func(t testing.TB, c *wstest.Client) { require.NoError(t, c.Conn().(*net.TCPConn).CloseWrite()) },
			func(t testing.TB, c *wstest.Client) { c.ExpectEOF(t) })},
		{"A.8 application close reason over 123 bytes is cut on a code point boundary", steps(send(wstest.Text([]byte("close-long"))), expectClosePayload(func(t testing.TB, p []byte) {
			require.GreaterOrEqual(t, len(p), 2)
			require.Equal(t, 4000, int(binary.BigEndian.Uint16(p)))
			require.True(t, utf8.Valid(p[2:]), "close reason %x is not valid UTF-8 (RFC 6455 §5.5.1)", p[2:])
			require.True(t, strings.HasPrefix(longReason, string(p[2:])), "reason %q", p[2:])
		}))},
	}
}

// appBugCases are the regression cases of BUG-3 (TestServerRegressions);
// see docs/CONFORMANCE.md.
func appBugCases() []confCase {
	return []confCase{
		{"A.9 application close with 1005 never puts 1005 on the wire", steps(send(wstest.Text([]byte("close-1005"))), expectClosePayload(func(t testing.TB, p []byte) {
			if len(p) >= 2 {
				code := ws.StatusCode(binary.BigEndian.Uint16(p))
				require.True(t, wire.ValidCloseCode(code), "server sent close code %d, which RFC 6455 §7.4.1 forbids on the wire", code)
			}
		}))},
	}
}

func TestConformanceApp(t *testing.T) {
	addr := startServer(t, nil, ws.HandlerFunc(appHandler))
	runCases(t, addr, dial, appCases())
}

// TestConformanceSlowConsumer: a client that sends but never reads is
// closed with 1008 once its queued echoes pass MaxWriteQueue; every echo
// queued before that still arrives, byte for byte and in order.
func TestConformanceSlowConsumer(t *testing.T) {
	addr := startEcho(t, func(c *ws.Config) {
		c.MaxWriteQueue = 64 << 10
		// The client writes megabytes before it reads; on a slow (emulated)
		// machine that outlasts the default linger after the 1008.
		c.LingerTimeout = 30 * time.Second
	})
	c := wstest.Dial(t, addr)
	require.NoError(t, c.Conn().(*net.TCPConn).SetReadBuffer(16<<10))
	const n, size = 400, 64 << 10 // 25 MiB, more than loopback buffers hold
	msgs := make([][]byte, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range msgs {
			msgs[i] = wstest.Payload(size, uint64(i))
			if err := c.Conn().SetWriteDeadline(time.Now().Add(wstest.Timeout)); err != nil {
				return
			}
			if _, err := c.Conn().Write(wstest.Binary(msgs[i])); err != nil {
				return // the server may stop reading once it has given up
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * wstest.Timeout):
		t.Fatal("writes blocked: the server stopped reading a slow client")
	}
	echoed := 0
	for {
		f := c.Next(t)
		if f.Op == gws.OpClose {
			require.GreaterOrEqual(t, len(f.Payload), 2)
			require.Equal(t, 1008, int(binary.BigEndian.Uint16(f.Payload)), "close %v", f)
			break
		}
		require.Equal(t, gws.OpBinary, f.Op)
		require.Less(t, echoed, n, "more echoes than messages")
		require.True(t, bytes.Equal(msgs[echoed], f.Payload), "echo %d differs", echoed)
		echoed++
	}
	require.Less(t, echoed, n, "every message was echoed: the queue limit never triggered")
	c.ExpectEOF(t)
	t.Logf("%d of %d messages echoed before 1008", echoed, n)
}

// TestConformanceAbortedClients: clients that reset their connection mid
// frame, mid handshake or mid message do not disturb the server.
func TestConformanceAbortedClients(t *testing.T) {
	addr := startEcho(t, nil)
	for i := range 30 {
		nc := wstest.DialRaw(t, addr).Conn()
		switch i % 3 {
		case 0:
			_, _ = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		case 1:
			c := wstest.Dial(t, addr)
			c.Write(t, wstest.Binary(wstest.Payload(10000, 1))[:5000])
			nc.Close()
			nc = c.Conn()
		case 2:
			c := wstest.Dial(t, addr)
			c.Write(t, wstest.Data(gws.OpText, false, []byte("part")))
			nc.Close()
			nc = c.Conn()
		}
		require.NoError(t, nc.(*net.TCPConn).SetLinger(0)) // RST, not FIN
		nc.Close()
	}
	c := wstest.Dial(t, addr)
	c.Write(t, wstest.Text([]byte("still here")))
	c.ExpectMessage(t, gws.OpText, []byte("still here"))
	for _, s := range closeNormally() {
		s(t, c)
	}
}
