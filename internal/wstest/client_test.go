package wstest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/require"
)

// serve accepts connections on 127.0.0.1:0 and runs handle on each in its
// own goroutine until the test ends; it returns the address.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(Timeout))
				handle(nc)
			}()
		}
	}()
	return ln.Addr().String()
}

// gobwasEcho is a gobwas/ws server: see echoFrames.
func gobwasEcho(nc net.Conn) {
	if _, err := gws.Upgrade(nc); err != nil {
		return
	}
	echoFrames(nc, nc)
}

// echoFrames echoes data messages read from r, with gobwas/ws's reader and
// writer, and answers a close with the code alone, then returns.
func echoFrames(r io.Reader, w io.Writer) {
	for {
		f, err := gws.ReadFrame(r)
		if err != nil {
			return
		}
		f = gws.UnmaskFrameInPlace(f)
		if f.Header.OpCode == gws.OpClose {
			_ = gws.WriteFrame(w, gws.NewCloseFrame(f.Payload[:2]))
			return
		}
		if err := wsutil.WriteServerMessage(w, f.Header.OpCode, f.Payload); err != nil {
			return
		}
	}
}

// TestClientAgainstGobwas runs the client's happy paths against a server
// we did not write.
func TestClientAgainstGobwas(t *testing.T) {
	addr := serve(t, gobwasEcho)
	c := Dial(t, addr)
	p := TextPayload(70000)
	c.WriteChopped(t, Text(p), 4096, 0)
	c.ExpectMessage(t, gws.OpText, p)
	c.Write(t, Binary(nil))
	c.ExpectMessage(t, gws.OpBinary, nil)
	c.Write(t, Close(1000, "bye"))
	c.ExpectClose(t, 1000, true)
}

// TestDialPipelinesExtra: the frames given to Dial follow the request in
// the same write. gobwas/ws's Upgrade reads ahead and would drop them, so
// this server reads the request itself.
func TestDialPipelinesExtra(t *testing.T) {
	addr := serve(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = nc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"))
		echoFrames(br, nc)
	})
	c := Dial(t, addr, append(Text([]byte("a")), Binary([]byte("b"))...)...)
	c.ExpectMessage(t, gws.OpText, []byte("a"))
	c.ExpectMessage(t, gws.OpBinary, []byte("b"))
}

// TestHandshakeChecks: Handshake refuses each way a 101 can be wrong.
func TestHandshakeChecks(t *testing.T) {
	ok := func(key string) map[string]string {
		return map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": AcceptKey(key)}
	}
	for _, tc := range []struct {
		name   string
		status string
		edit   func(h map[string]string, key string)
		want   string // in the error; "" for none
	}{
		{"valid", "101 Switching Protocols", func(map[string]string, string) {}, ""},
		{"Upgrade and Connection in other cases", "101 Switching Protocols", func(h map[string]string, _ string) {
			h["Upgrade"], h["Connection"] = "WebSocket", "upgrade"
		}, ""},
		{"status 200", "200 OK", func(map[string]string, string) {}, "status"},
		{"no Upgrade", "101 Switching Protocols", func(h map[string]string, _ string) { delete(h, "Upgrade") }, "Upgrade header"},
		{"Connection: keep-alive", "101 Switching Protocols", func(h map[string]string, _ string) { h["Connection"] = "keep-alive" }, "Connection header"},
		{"wrong accept", "101 Switching Protocols", func(h map[string]string, _ string) { h["Sec-WebSocket-Accept"] = AcceptKey("other") }, "Sec-WebSocket-Accept"},
		{"no accept", "101 Switching Protocols", func(h map[string]string, _ string) { delete(h, "Sec-WebSocket-Accept") }, "Sec-WebSocket-Accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, func(nc net.Conn) {
				req, err := http.ReadRequest(bufio.NewReader(nc))
				if err != nil {
					return
				}
				key := req.Header.Get("Sec-WebSocket-Key")
				h := ok(key)
				tc.edit(h, key)
				var b strings.Builder
				b.WriteString("HTTP/1.1 " + tc.status + "\r\nContent-Length: 0\r\n")
				for k, v := range h {
					b.WriteString(k + ": " + v + "\r\n")
				}
				b.WriteString("\r\n")
				_, _ = nc.Write([]byte(b.String()))
			})
			c := DialRaw(t, addr)
			err := c.Handshake(addr)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestExpectResponse(t *testing.T) {
	addr := serve(t, func(nc net.Conn) {
		_, _ = http.ReadRequest(bufio.NewReader(nc))
		_, _ = nc.Write([]byte("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 4\r\n\r\nbody"))
	})
	c := DialRaw(t, addr)
	c.Write(t, []byte(strings.Replace(Request(addr, NewKey()), "Version: 13", "Version: 8", 1)))
	resp := c.ExpectResponse(t, http.StatusUpgradeRequired)
	require.Equal(t, "13", resp.Header.Get("Sec-WebSocket-Version"))
	c.ExpectEOF(t)
}

// TestRequestUpgradesGobwas: gobwas/ws's upgrader accepts Request as is,
// and answers with AcceptKey.
func TestRequestUpgradesGobwas(t *testing.T) {
	cl, sv := net.Pipe()
	defer cl.Close()
	defer sv.Close()
	go func() { _, _ = gws.Upgrade(sv) }()
	key := NewKey()
	go func() { _, _ = cl.Write([]byte(Request("example.com", key))) }()
	resp, err := http.ReadResponse(bufio.NewReader(cl), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, AcceptKey(key), resp.Header.Get("Sec-WebSocket-Accept"))
}

// TestAcceptKeyRFCExample is the example of RFC 6455 §1.3.
func TestAcceptKeyRFCExample(t *testing.T) {
	require.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
}

// TestDialTimeoutFails: no listener, a server that never answers, and one
// that refuses the upgrade are all errors, within the timeout.
func TestDialTimeoutFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()
	silent := serve(t, func(nc net.Conn) { _, _ = io.Copy(io.Discard, nc) })
	refusing := serve(t, func(nc net.Conn) {
		_, _ = http.ReadRequest(bufio.NewReader(nc))
		_, _ = nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	for name, addr := range map[string]string{"no listener": closed, "silent": silent, "refusing": refusing} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			c, err := DialTimeout(addr, 200*time.Millisecond)
			require.Error(t, err)
			require.Nil(t, c)
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
}
