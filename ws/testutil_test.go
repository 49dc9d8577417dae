package ws_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/ws"
)

// ioTimeout bounds every read and write of the test clients, so that a
// server that stops answering fails the test instead of hanging it. It is
// generous because -race on two shared cores is slow.
const ioTimeout = 10 * time.Second

// startEcho runs the real server (the echo program's handler) on
// 127.0.0.1:0 with the defaults changed by mod, and returns its address.
// The server is shut down when t's cleanup runs, i.e. after all of t's
// parallel subtests.
func startEcho(t testing.TB, mod func(*ws.Config)) string {
	t.Helper()
	return startServer(t, mod, ws.HandlerFunc(func(e *ws.Event) error {
		if e.Kind == ws.MessageEvent {
			return e.Conn.WriteMessage(e.Op, e.Data)
		}
		return nil
	}))
}

// startServer is startEcho with another handler.
func startServer(t testing.TB, mod func(*ws.Config), h ws.Handler) string {
	t.Helper()
	cfg := ws.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Workers = 2
	cfg.ShutdownTimeout = time.Second
	cfg.LingerTimeout = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	srv, err := ws.NewServer(cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(h)
	}()
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown())
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(ioTimeout):
			t.Error("Run did not return after Shutdown")
		}
	})
	return srv.Addr().String()
}

// Opcodes as bytes, for frames the server must not accept as well as those
// it must.
const (
	opCont  byte = 0x0
	opText  byte = 0x1
	opBin   byte = 0x2
	opClose byte = 0x8
	opPing  byte = 0x9
	opPong  byte = 0xa
)

// frame is a client frame to put on the wire, with every field a test may
// want to get wrong.
type frame struct {
	fin      bool
	rsv      byte // the 3 RSV bits, 0..7
	op       byte
	payload  []byte
	lenBits  int    // 0: minimal length encoding; 7, 16 or 64 to force one
	length   uint64 // with rawLen: the declared length, whatever the payload
	rawLen   bool
	unmasked bool
}

// bytes encodes f, masked with a random key unless f.unmasked.
func (f frame) bytes() []byte {
	b0 := f.op&0x0f | (f.rsv&7)<<4
	if f.fin {
		b0 |= 0x80
	}
	n := uint64(len(f.payload))
	if f.rawLen {
		n = f.length
	}
	bits := f.lenBits
	if bits == 0 {
		switch {
		case n < 126:
			bits = 7
		case n <= 0xffff:
			bits = 16
		default:
			bits = 64
		}
	}
	var maskBit byte = 0x80
	if f.unmasked {
		maskBit = 0
	}
	out := []byte{b0}
	switch bits {
	case 7:
		out = append(out, maskBit|byte(n))
	case 16:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	case 64:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, n)
	default:
		panic("bad lenBits")
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	out = append(out, key[:]...)
	hs := len(out)
	out = append(out, f.payload...)
	gws.Cipher(out[hs:], key, 0)
	return out
}

// Frame constructors. data frames are final unless said otherwise.
func textF(p string) []byte { return frame{fin: true, op: opText, payload: []byte(p)}.bytes() }
func textB(p []byte) []byte { return frame{fin: true, op: opText, payload: p}.bytes() }
func binF(p []byte) []byte  { return frame{fin: true, op: opBin, payload: p}.bytes() }
func pingF(p []byte) []byte { return frame{fin: true, op: opPing, payload: p}.bytes() }
func pongF(p []byte) []byte { return frame{fin: true, op: opPong, payload: p}.bytes() }
func dataF(op byte, fin bool, p []byte) []byte {
	return frame{fin: fin, op: op, payload: p}.bytes()
}

// closeF is a close frame with code (and reason); code < 0 gives an empty
// payload.
func closeF(code int, reason string) []byte {
	if code < 0 {
		return frame{fin: true, op: opClose}.bytes()
	}
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return frame{fin: true, op: opClose, payload: append(p, reason...)}.bytes()
}

// fragments splits p into frames of at most size bytes: the first with op,
// the rest continuations, the last final. An empty p is one final frame.
func fragments(op byte, p []byte, size int) []byte {
	if len(p) == 0 {
		return dataF(op, true, nil)
	}
	var out []byte
	for off := 0; off < len(p); off += size {
		end := min(off+size, len(p))
		o := opCont
		if off == 0 {
			o = op
		}
		out = append(out, dataF(o, end == len(p), p[off:end])...)
	}
	return out
}

// client is a raw WebSocket client: it writes whatever bytes a test gives
// it and parses the server's frames strictly.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// dialRaw opens a TCP connection to addr, closed at t's cleanup.
func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// handshakeRequest is a valid upgrade request with key.
func handshakeRequest(addr, key string) string {
	return "GET /chat HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// newKey returns a random Sec-WebSocket-Key.
func newKey() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return base64.StdEncoding.EncodeToString(b[:])
}

// acceptKey is RFC 6455 §4.2.2's Sec-WebSocket-Accept for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dial connects and completes the opening handshake, checking the 101
// response and its Sec-WebSocket-Accept. extra is sent in the same write
// as the request (pipelined frames).
func dial(t testing.TB, addr string, extra ...byte) *client {
	t.Helper()
	nc := dialRaw(t, addr)
	key := newKey()
	c := &client{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
	c.write(append([]byte(handshakeRequest(addr, key)), extra...))
	resp := c.readResponse(nil)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode, "status")
	require.True(t, strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"), "Upgrade header %q", resp.Header.Get("Upgrade"))
	require.True(t, strings.EqualFold(resp.Header.Get("Connection"), "upgrade"), "Connection header %q", resp.Header.Get("Connection"))
	require.Equal(t, acceptKey(key), resp.Header.Get("Sec-WebSocket-Accept"), "Sec-WebSocket-Accept")
	return c
}

// readResponse reads an HTTP response head (and its body, if it declares
// one) from the connection.
func (c *client) readResponse(req *http.Request) *http.Response {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(ioTimeout)))
	resp, err := http.ReadResponse(c.br, req)
	require.NoError(c.t, err, "reading the HTTP response")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, err = io.ReadAll(resp.Body)
		require.NoError(c.t, err, "reading the response body")
	}
	return resp
}

func (c *client) write(b []byte) {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetWriteDeadline(time.Now().Add(ioTimeout)))
	_, err := c.nc.Write(b)
	require.NoError(c.t, err, "write %d bytes", len(b))
}

// writeChopped writes b in pieces of chunk bytes, pausing between them so
// that the server sees them in separate reads.
func (c *client) writeChopped(b []byte, chunk int, pause time.Duration) {
	c.t.Helper()
	for off := 0; off < len(b); off += chunk {
		if off > 0 && pause > 0 {
			time.Sleep(pause)
		}
		c.write(b[off:min(off+chunk, len(b))])
	}
}

// srvFrame is a frame the server sent.
type srvFrame struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
}

func (f srvFrame) String() string {
	p := f.payload
	suffix := ""
	if len(p) > 32 {
		p, suffix = p[:32], "..."
	}
	return fmt.Sprintf("{fin:%v rsv:%d op:%#x len:%d payload:%x%s}", f.fin, f.rsv, f.op, len(f.payload), p, suffix)
}

// errNoFrame is readFrame's error for a connection that ended cleanly
// between frames.
var errNoFrame = io.EOF

// readFrame reads one server frame, checking what RFC 6455 requires of a
// server's frame header: no mask (§5.1) and the minimal length encoding
// (§5.2).
func (c *client) readFrame() (srvFrame, error) {
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(ioTimeout)))
	var f srvFrame
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return f, err
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = (h[0] >> 4) & 7
	f.op = h[0] & 0x0f
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked (RFC 6455 §5.1)")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
		if n < 126 {
			return f, fmt.Errorf("non-minimal 16-bit length %d", n)
		}
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(e[:])
		if n <= 0xffff {
			return f, fmt.Errorf("non-minimal 64-bit length %d", n)
		}
		if n > 64<<20 {
			return f, fmt.Errorf("absurd frame length %d", n)
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return f, fmt.Errorf("reading %d payload bytes: %w", n, err)
	}
	return f, nil
}

// next reads a frame that must be there.
func (c *client) next() srvFrame {
	c.t.Helper()
	f, err := c.readFrame()
	require.NoError(c.t, err, "reading a server frame")
	require.Zero(c.t, f.rsv, "server frame %v has RSV bits", f)
	return f
}

// expectMessage reads a frame that must be a final frame of type op
// carrying exactly want.
func (c *client) expectMessage(op byte, want []byte) {
	c.t.Helper()
	f := c.next()
	require.Equal(c.t, op, f.op, "opcode of %v", f)
	require.True(c.t, f.fin, "FIN of %v", f)
	if !bytes.Equal(want, f.payload) {
		require.Failf(c.t, "payload mismatch", "want %d bytes %s, got %v (first difference at %d)",
			len(want), short(want), f, firstDiff(want, f.payload))
	}
}

// expectEOF reads the end of the connection: the server must have closed
// it (or shut its write side) without sending anything more.
func (c *client) expectEOF() {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(ioTimeout)))
	var b [512]byte
	n, err := c.br.Read(b[:])
	if n > 0 {
		require.Failf(c.t, "bytes after the close frame", "got %d bytes %x", n, b[:n])
	}
	require.ErrorIs(c.t, err, io.EOF, "want EOF after the close frame")
}

// expectClose reads the server's close frame, which must carry code
// (code < 0: an empty close payload) with a valid UTF-8 reason, and then
// the end of the connection. echo says the close answers the client's: it
// carries the code alone, with no reason.
func (c *client) expectClose(code int, echo bool) {
	c.t.Helper()
	f := c.next()
	require.Equal(c.t, opClose, f.op, "want a close frame with %d, got %v", code, f)
	require.True(c.t, f.fin, "FIN of %v", f)
	switch {
	case code < 0:
		require.Empty(c.t, f.payload, "want an empty close, got %v", f)
	default:
		require.GreaterOrEqual(c.t, len(f.payload), 2, "close payload of %v", f)
		require.Equal(c.t, code, int(binary.BigEndian.Uint16(f.payload)), "close code of %v (reason %q)", f, f.payload[2:])
		require.True(c.t, utf8.Valid(f.payload[2:]), "close reason %q is not UTF-8", f.payload[2:])
		if echo {
			require.Len(c.t, f.payload, 2, "an echoed close carries the code alone: %v", f)
		}
	}
	c.expectEOF()
}

func short(b []byte) string {
	if len(b) > 32 {
		return fmt.Sprintf("%x...", b[:32])
	}
	return fmt.Sprintf("%x", b)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// step is one action or expectation of a conformance case.
type step func(c *client)

// send writes frames (concatenated) in one write.
func send(frames ...[]byte) step {
	b := bytes.Join(frames, nil)
	return func(c *client) { c.write(b) }
}

// sendEach writes each frame in its own write, pausing between them.
func sendEach(pause time.Duration, frames ...[]byte) step {
	return func(c *client) {
		for i, f := range frames {
			if i > 0 && pause > 0 {
				time.Sleep(pause)
			}
			c.write(f)
		}
	}
}

// sendChopped writes the frames' bytes chunk bytes at a time.
func sendChopped(chunk int, pause time.Duration, frames ...[]byte) step {
	b := bytes.Join(frames, nil)
	return func(c *client) { c.writeChopped(b, chunk, pause) }
}

// pause waits d.
func pause(d time.Duration) step { return func(*client) { time.Sleep(d) } }

func expectText(p []byte) step   { return func(c *client) { c.expectMessage(opText, p) } }
func expectTextS(p string) step  { return expectText([]byte(p)) }
func expectBinary(p []byte) step { return func(c *client) { c.expectMessage(opBin, p) } }
func expectPong(p []byte) step   { return func(c *client) { c.expectMessage(opPong, p) } }

// expectFail expects the server to fail the connection: a close frame with
// code and then EOF.
func expectFail(code int) step { return func(c *client) { c.expectClose(code, false) } }

// expectCloseEcho expects the server's answer to the client's close: the
// same code alone (code < 0: an empty close), then EOF.
func expectCloseEcho(code int) step { return func(c *client) { c.expectClose(code, true) } }

// closeNormally runs the closing handshake with 1000. Ending a case with it
// also proves that the server sent nothing unexpected before.
func closeNormally() []step { return []step{send(closeF(1000, "")), expectCloseEcho(1000)} }

// steps flattens step lists, for building cases.
func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch v := p.(type) {
		case step:
			out = append(out, v)
		case func(*client):
			out = append(out, v)
		case []step:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("steps: %T", p))
		}
	}
	return out
}

// payload returns n bytes of deterministic binary data (every byte value
// occurs).
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// textPayload returns n bytes of valid UTF-8 mixing 1- to 4-byte
// sequences, so that code points straddle every frame and read boundary.
func textPayload(n int) []byte {
	pieces := []string{"a", "Hello", "-", "µ", "ß", "κόσμε", "€", "𝄞", "\u0800", "\U0010FFFF", " "}
	b := make([]byte, 0, n+4)
	for i := 0; len(b) < n; i++ {
		b = append(b, pieces[(i*7+i/3)%len(pieces)]...)
	}
	for len(b) > n { // cut back to n on a code point boundary, padding with ASCII
		_, size := utf8.DecodeLastRune(b)
		b = b[:len(b)-size]
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

// cut splits b at the given offsets, for sends that must straddle reads.
func cut(b []byte, at ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, a := range at {
		out = append(out, b[prev:a])
		prev = a
	}
	return append(out, b[prev:])
}
