package wstest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

// Timeout bounds every read and write of the methods that take a
// testing.TB, so that a server that stops answering fails the test instead
// of hanging it. It is generous because -race on two shared cores is slow.
const Timeout = 10 * time.Second

// DialRaw opens a TCP connection to addr, with no handshake; it is closed
// when t's cleanup runs.
func DialRaw(t testing.TB, addr string) *Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, Timeout)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return NewClient(nc)
}

// Dial is DialTimeout with Timeout, and the connection is closed when t's
// cleanup runs.
func Dial(t testing.TB, addr string, extra ...byte) *Client {
	t.Helper()
	c, err := DialTimeout(addr, Timeout, extra...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// Write writes b in one write.
func (c *Client) Write(t testing.TB, b []byte) {
	t.Helper()
	require.NoError(t, c.nc.SetWriteDeadline(time.Now().Add(Timeout)))
	_, err := c.nc.Write(b)
	require.NoError(t, err, "write %d bytes", len(b))
}

// WriteChopped writes b in pieces of chunk bytes, pausing between them so
// that the server sees them in separate reads.
func (c *Client) WriteChopped(t testing.TB, b []byte, chunk int, pause time.Duration) {
	t.Helper()
	for off := 0; off < len(b); off += chunk {
		if off > 0 && pause > 0 {
			time.Sleep(pause)
		}
		c.Write(t, b[off:min(off+chunk, len(b))])
	}
}

// Next reads a frame that must be there and well formed, without RSV bits
// except RSV1 on a text or binary frame once permessage-deflate is
// negotiated (c.Deflate; RFC 7692 §6.1: never on a control frame or a
// continuation).
func (c *Client) Next(t testing.TB) Frame {
	t.Helper()
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(Timeout)))
	f, err := c.ReadFrame()
	require.NoError(t, err, "reading a server frame")
	if c.Deflate == nil || f.Rsv != 4 || (f.Op != gws.OpText && f.Op != gws.OpBinary) {
		require.Zero(t, f.Rsv, "server frame %v has RSV bits", f)
	}
	return f
}

// ExpectMessage reads a frame that must be a final frame of type op
// carrying exactly want, inflated first if it is compressed.
func (c *Client) ExpectMessage(t testing.TB, op gws.OpCode, want []byte) {
	t.Helper()
	c.expectMessage(t, op, want, false)
}

// ExpectCompressed is ExpectMessage for a message that must arrive
// compressed (RSV1 set).
func (c *Client) ExpectCompressed(t testing.TB, op gws.OpCode, want []byte) {
	t.Helper()
	c.expectMessage(t, op, want, true)
}

func (c *Client) expectMessage(t testing.TB, op gws.OpCode, want []byte, compressed bool) {
	t.Helper()
	f := c.Next(t)
	require.Equal(t, op, f.Op, "opcode of %v", f)
	require.True(t, f.Fin, "FIN of %v", f)
	if compressed {
		require.Equal(t, byte(4), f.Rsv, "want a compressed message (RSV1), got %v", f)
	}
	if f.Rsv == 4 {
		p, err := c.Deflate.Inflate(f.Payload, MaxFrame)
		require.NoError(t, err, "inflating %v", f)
		f.Payload = p
	}
	if !bytes.Equal(want, f.Payload) {
		require.Failf(t, "payload mismatch", "want %d bytes %s, got %v (first difference at %d)",
			len(want), short(want), f, FirstDiff(want, f.Payload))
	}
}

// ExpectClose reads the server's close frame, which must carry code
// (code < 0: an empty close payload) with a valid UTF-8 reason, and then
// the end of the connection. echo says the close answers the client's: it
// carries the code alone, with no reason.
func (c *Client) ExpectClose(t testing.TB, code int, echo bool) {
	t.Helper()
	f := c.Next(t)
	require.Equal(t, gws.OpClose, f.Op, "want a close frame with %d, got %v", code, f)
	require.True(t, f.Fin, "FIN of %v", f)
	switch {
	case code < 0:
		require.Empty(t, f.Payload, "want an empty close, got %v", f)
	default:
		require.GreaterOrEqual(t, len(f.Payload), 2, "close payload of %v", f)
		require.Equal(t, code, int(binary.BigEndian.Uint16(f.Payload)), "close code of %v (reason %q)", f, f.Payload[2:])
		require.True(t, utf8.Valid(f.Payload[2:]), "close reason %q is not UTF-8", f.Payload[2:])
		if echo {
			require.Len(t, f.Payload, 2, "an echoed close carries the code alone: %v", f)
		}
	}
	c.ExpectEOF(t)
}

// ExpectEOF reads the end of the connection: the server must have closed
// it (or shut its write side) without sending anything more.
func (c *Client) ExpectEOF(t testing.TB) {
	t.Helper()
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(Timeout)))
	var b [512]byte
	n, err := c.br.Read(b[:])
	if n > 0 {
		require.Failf(t, "bytes before the end of the connection", "got %d bytes %x", n, b[:n])
	}
	require.ErrorIs(t, err, io.EOF, "want the end of the connection")
}

// ExpectResponse reads an HTTP response (see ReadResponse) that must have
// status, and returns it for the test to check its headers.
func (c *Client) ExpectResponse(t testing.TB, status int) *http.Response {
	t.Helper()
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(Timeout)))
	resp, err := c.ReadResponse(nil)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "status %q", resp.Status)
	return resp
}
