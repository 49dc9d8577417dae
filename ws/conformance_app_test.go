package ws_test

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

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
func expectClosePayload(check func(c *client, p []byte)) step {
	return func(c *client) {
		c.t.Helper()
		f := c.next()
		require.Equal(c.t, opClose, f.op, "want a close frame, got %v", f)
		require.LessOrEqual(c.t, len(f.payload), 125)
		check(c, f.payload)
		c.expectEOF()
	}
}

func appCases() []confCase {
	return []confCase{
		{"A.1 handler error closes with 1011", steps(send(textF("hello"), textF("fail"), textF("not echoed")), expectTextS("hello"), expectFail(1011))},
		{"A.2 application close 3000 with a reason", steps(send(textF("close-3000")), expectClosePayload(func(c *client, p []byte) {
			require.Equal(c.t, append([]byte{0x0b, 0xb8}, "bye"...), p)
		}))},
		{"A.3 application close, then the client's close reply", steps(send(textF("close-3000")), func(c *client) {
			f := c.next()
			require.Equal(c.t, opClose, f.op)
			c.write(closeF(3000, ""))
			c.expectEOF()
		})},
		{"A.4 Send from another goroutine", steps(send(textF("send-async")), expectTextS("from another goroutine"), closeNormally())},
		{"A.5 CloseAsync from another goroutine", steps(send(textF("close-async")), expectFail(4001))},
		{"A.6 client half-closes after a 4 MiB message: the echo is delivered, then EOF", steps(
			send(binF(bigPayload(false, 4<<20))),
			func(c *client) { require.NoError(c.t, c.nc.(*net.TCPConn).CloseWrite()) },
			expectBinary(bigPayload(false, 4<<20)),
			func(c *client) { c.expectEOF() })},
		{"A.7 client half-closes mid-frame: EOF, nothing else", steps(
			send(binF(payload(1000, 1))[:500]),
			func(c *client) { require.NoError(c.t, c.nc.(*net.TCPConn).CloseWrite()) },
			func(c *client) { c.expectEOF() })},
		{"A.8 application close reason over 123 bytes is cut on a code point boundary", steps(send(textF("close-long")), expectClosePayload(func(c *client, p []byte) {
			require.GreaterOrEqual(c.t, len(p), 2)
			require.Equal(c.t, 4000, int(binary.BigEndian.Uint16(p)))
			require.True(c.t, utf8.Valid(p[2:]), "close reason %x is not valid UTF-8 (RFC 6455 §5.5.1)", p[2:])
			require.True(c.t, strings.HasPrefix(longReason, string(p[2:])), "reason %q", p[2:])
		}))},
	}
}

// appBugCases are the regression cases of BUG-3 (TestServerRegressions);
// see docs/CONFORMANCE.md.
func appBugCases() []confCase {
	return []confCase{
		{"A.9 application close with 1005 never puts 1005 on the wire", steps(send(textF("close-1005")), expectClosePayload(func(c *client, p []byte) {
			if len(p) >= 2 {
				code := ws.StatusCode(binary.BigEndian.Uint16(p))
				require.True(c.t, wire.ValidCloseCode(code), "server sent close code %d, which RFC 6455 §7.4.1 forbids on the wire", code)
			}
		}))},
	}
}

func runCases(t *testing.T, addr string, cases []confCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, addr)
			for _, s := range tc.steps {
				s(c)
			}
		})
	}
}

func TestConformanceApp(t *testing.T) {
	addr := startServer(t, nil, ws.HandlerFunc(appHandler))
	runCases(t, addr, appCases())
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
	c := dial(t, addr)
	require.NoError(t, c.nc.(*net.TCPConn).SetReadBuffer(16<<10))
	const n, size = 400, 64 << 10 // 25 MiB, more than loopback buffers hold
	msgs := make([][]byte, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range msgs {
			msgs[i] = payload(size, uint64(i))
			if err := c.nc.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
				return
			}
			if _, err := c.nc.Write(binF(msgs[i])); err != nil {
				return // the server may stop reading once it has given up
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * ioTimeout):
		t.Fatal("writes blocked: the server stopped reading a slow client")
	}
	echoed := 0
	for {
		f := c.next()
		if f.op == opClose {
			require.GreaterOrEqual(t, len(f.payload), 2)
			require.Equal(t, 1008, int(binary.BigEndian.Uint16(f.payload)), "close %v", f)
			break
		}
		require.Equal(t, opBin, f.op)
		require.Less(t, echoed, n, "more echoes than messages")
		require.True(t, equalBytes(msgs[echoed], f.payload), "echo %d differs", echoed)
		echoed++
	}
	require.Less(t, echoed, n, "every message was echoed: the queue limit never triggered")
	c.expectEOF()
	t.Logf("%d of %d messages echoed before 1008", echoed, n)
}

// TestConformanceAbortedClients: clients that reset their connection mid
// frame, mid handshake or mid message do not disturb the server.
func TestConformanceAbortedClients(t *testing.T) {
	addr := startEcho(t, nil)
	for i := range 30 {
		nc := dialRaw(t, addr)
		switch i % 3 {
		case 0:
			_, _ = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		case 1:
			c := dial(t, addr)
			c.write(binF(payload(10000, 1))[:5000])
			nc.Close()
			nc = c.nc
		case 2:
			c := dial(t, addr)
			c.write(dataF(opText, false, []byte("part")))
			nc.Close()
			nc = c.nc
		}
		require.NoError(t, nc.(*net.TCPConn).SetLinger(0)) // RST, not FIN
		nc.Close()
	}
	c := dial(t, addr)
	c.write(textF("still here"))
	c.expectMessage(opText, []byte("still here"))
	for _, s := range closeNormally() {
		s(c)
	}
}
