package ws_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	gws "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// Interop: real client libraries we did not write, against the real server.

var interopSizes = []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}

// gobwasConn is a gobwas/ws client connection.
type gobwasConn struct {
	t  *testing.T
	nc net.Conn
	r  io.Reader // the handshake's buffered reader, then the connection
}

func dialGobwas(t *testing.T, addr string) *gobwasConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	nc, br, _, err := gws.Dial(ctx, "ws://"+addr+"/")
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(wstest.Timeout)))
	var r io.Reader = nc
	if br != nil {
		r = io.MultiReader(br, nc)
	}
	return &gobwasConn{t: t, nc: nc, r: r}
}

type rw struct {
	io.Reader
	io.Writer
}

func (c *gobwasConn) readFrame() gws.Frame {
	c.t.Helper()
	f, err := gws.ReadFrame(c.r)
	require.NoError(c.t, err)
	return f
}

func TestInteropGobwas(t *testing.T) {
	t.Parallel()
	addr := startEcho(t, nil)
	for _, op := range []gws.OpCode{gws.OpText, gws.OpBinary} {
		for _, n := range interopSizes {
			t.Run(fmt.Sprintf("%v %d bytes", op, n), func(t *testing.T) {
				t.Parallel()
				c := dialGobwas(t, addr)
				p := wstest.Payload(n, 3)
				if op == gws.OpText {
					p = wstest.TextPayload(n)
				}
				require.NoError(t, wsutil.WriteClientMessage(c.nc, op, p))
				got, gotOp, err := wsutil.ReadServerData(rw{c.r, c.nc})
				require.NoError(t, err)
				require.Equal(t, op, gotOp)
				require.True(t, bytes.Equal(p, got), "echo of %d bytes differs at %d", n, wstest.FirstDiff(p, got))
			})
		}
	}
	t.Run("fragmented writes with wsutil.Writer", func(t *testing.T) {
		t.Parallel()
		c := dialGobwas(t, addr)
		p := wstest.TextPayload(10000)
		w := wsutil.NewWriterSize(c.nc, gws.StateClientSide, gws.OpText, 512)
		for off := 0; off < len(p); off += 1500 {
			_, err := w.Write(p[off:min(off+1500, len(p))])
			require.NoError(t, err)
			require.NoError(t, w.FlushFragment())
		}
		require.NoError(t, w.Flush())
		got, op, err := wsutil.ReadServerData(rw{c.r, c.nc})
		require.NoError(t, err)
		require.Equal(t, gws.OpText, op)
		require.Equal(t, p, got)
	})
	t.Run("ping and pong", func(t *testing.T) {
		t.Parallel()
		c := dialGobwas(t, addr)
		require.NoError(t, wsutil.WriteClientMessage(c.nc, gws.OpPing, []byte("are you there")))
		f := c.readFrame()
		require.Equal(t, gws.OpPong, f.Header.OpCode)
		require.True(t, f.Header.Fin)
		require.Equal(t, []byte("are you there"), f.Payload)
		// An unsolicited pong gets no answer: the next frame is the echo.
		require.NoError(t, wsutil.WriteClientMessage(c.nc, gws.OpPong, []byte("x")))
		require.NoError(t, wsutil.WriteClientMessage(c.nc, gws.OpBinary, []byte("after pong")))
		f = c.readFrame()
		require.Equal(t, gws.OpBinary, f.Header.OpCode)
		require.Equal(t, []byte("after pong"), f.Payload)
	})
	t.Run("close 1000", func(t *testing.T) {
		t.Parallel()
		c := dialGobwas(t, addr)
		body := gws.NewCloseFrameBody(gws.StatusNormalClosure, "bye")
		require.NoError(t, gws.WriteFrame(c.nc, gws.MaskFrame(gws.NewCloseFrame(body))))
		f := c.readFrame()
		require.Equal(t, gws.OpClose, f.Header.OpCode)
		code, reason := gws.ParseCloseFrameData(f.Payload)
		require.Equal(t, gws.StatusNormalClosure, code)
		require.Empty(t, reason)
		_, err := c.r.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("wsutil reports the server's close on a protocol error", func(t *testing.T) {
		t.Parallel()
		c := dialGobwas(t, addr)
		// Invalid UTF-8 in a text message: the server answers 1007.
		require.NoError(t, wsutil.WriteClientMessage(c.nc, gws.OpText, []byte{0xff}))
		_, _, err := wsutil.ReadServerData(rw{c.r, c.nc})
		var ce wsutil.ClosedError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, gws.StatusInvalidFramePayloadData, ce.Code)
	})
}

func dialGorilla(t *testing.T, addr string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: wstest.Timeout}
	}
	conn, resp, err := d.Dial("ws://"+addr+"/echo", nil)
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wstest.Timeout)))
	require.NoError(t, conn.SetWriteDeadline(time.Now().Add(wstest.Timeout)))
	conn.SetReadLimit(32 << 20)
	return conn
}

// gorillaPieces writes p as one message of type mt through gorilla's
// NextWriter in writes of 777 bytes, and requires it back.
func gorillaPieces(t *testing.T, conn *websocket.Conn, mt int, p []byte) {
	t.Helper()
	w, err := conn.NextWriter(mt)
	require.NoError(t, err)
	for off := 0; off < len(p); off += 777 {
		_, err := w.Write(p[off:min(off+777, len(p))])
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	gotType, got, err := conn.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, mt, gotType)
	require.Equal(t, p, got)
}

func TestInteropGorilla(t *testing.T) {
	t.Parallel()
	addr := startEcho(t, nil)
	for _, mt := range []int{websocket.TextMessage, websocket.BinaryMessage} {
		for _, n := range interopSizes {
			t.Run(fmt.Sprintf("type %d %d bytes", mt, n), func(t *testing.T) {
				t.Parallel()
				conn := dialGorilla(t, addr, nil)
				p := wstest.Payload(n, 4)
				if mt == websocket.TextMessage {
					p = wstest.TextPayload(n)
				}
				require.NoError(t, conn.WriteMessage(mt, p))
				gotType, got, err := conn.ReadMessage()
				require.NoError(t, err)
				require.Equal(t, mt, gotType)
				require.True(t, bytes.Equal(p, got), "echo of %d bytes differs at %d", n, wstest.FirstDiff(p, got))
			})
		}
	}
	t.Run("fragmented writes with NextWriter", func(t *testing.T) {
		t.Parallel()
		// A 512-byte write buffer makes gorilla send a frame whenever it
		// fills, so the message goes out as many fragments.
		conn := dialGorilla(t, addr, &websocket.Dialer{HandshakeTimeout: wstest.Timeout, WriteBufferSize: 512})
		for _, mt := range []int{websocket.BinaryMessage, websocket.TextMessage} {
			gorillaPieces(t, conn, mt, wstest.TextPayload(20000))
		}
	})
	t.Run("ping and pong", func(t *testing.T) {
		t.Parallel()
		conn := dialGorilla(t, addr, nil)
		pongs := make(chan string, 4)
		conn.SetPongHandler(func(s string) error { pongs <- s; return nil })
		require.NoError(t, conn.WriteControl(websocket.PingMessage, []byte("ping-1"), time.Now().Add(wstest.Timeout)))
		require.NoError(t, conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wstest.Timeout)))
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte("after pings")))
		_, got, err := conn.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, "after pings", string(got))
		require.Equal(t, "ping-1", <-pongs)
		require.Equal(t, "", <-pongs)
	})
	t.Run("close 1000", func(t *testing.T) {
		t.Parallel()
		conn := dialGorilla(t, addr, nil)
		require.NoError(t, conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(wstest.Timeout)))
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, websocket.CloseNormalClosure, ce.Code)
		require.Empty(t, ce.Text)
		_, err = bufio.NewReader(conn.NetConn()).ReadByte()
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("close 1002 on a reserved opcode", func(t *testing.T) {
		t.Parallel()
		conn := dialGorilla(t, addr, nil)
		// gorilla will not send a bad frame; write one under it.
		_, err := conn.NetConn().Write(wstest.Frame{Fin: true, Op: 0x3}.Bytes())
		require.NoError(t, err)
		_, _, err = conn.ReadMessage()
		var ce *websocket.CloseError
		require.True(t, errors.As(err, &ce), "got %v", err)
		require.Equal(t, websocket.CloseProtocolError, ce.Code)
	})
}

// startCompressedEcho is startEcho with permessage-deflate on; it returns
// the server too, whose counters tell whether messages went compressed.
func startCompressedEcho(t *testing.T) (*ws.Server, string) {
	t.Helper()
	cfg := ws.DefaultConfig()
	cfg.ListenAddr, cfg.Workers = "127.0.0.1:0", 2
	cfg.ShutdownTimeout = time.Second
	cfg.Compression.Enabled = true
	srv, err := ws.NewServer(cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(ws.HandlerFunc(func(e *ws.Event) error {
			if e.Kind == ws.MessageEvent {
				return e.Conn.WriteMessage(e.Op, e.Data)
			}
			return nil
		}))
	}()
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown())
		require.NoError(t, <-done)
	})
	return srv, srv.Addr().String()
}

// TestInteropGorillaCompression: gorilla with EnableCompression (it offers
// permessage-deflate without context takeover on either side) sends and
// reads compressed messages of every size, whole and fragmented.
func TestInteropGorillaCompression(t *testing.T) {
	t.Parallel()
	srv, addr := startCompressedEcho(t)
	d := &websocket.Dialer{HandshakeTimeout: wstest.Timeout, EnableCompression: true, WriteBufferSize: 4096}
	conn, resp, err := d.Dial("ws://"+addr+"/echo", nil)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.Equal(t, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", resp.Header.Get("Sec-WebSocket-Extensions"))
	conn.SetReadLimit(32 << 20)
	conn.EnableWriteCompression(true)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(4*wstest.Timeout)))
	sent := 0
	for _, mt := range []int{websocket.TextMessage, websocket.BinaryMessage} {
		for _, n := range interopSizes {
			p := cyclic(deflateData(0), 0, n) // JSON
			if mt == websocket.BinaryMessage {
				p = wstest.Payload(n, 4)
			}
			require.NoError(t, conn.WriteMessage(mt, p))
			gotType, got, err := conn.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, mt, gotType)
			require.True(t, bytes.Equal(p, got), "echo of %d bytes differs at %d", n, wstest.FirstDiff(p, got))
			sent++
		}
	}
	// A message gorilla writes as many fragments (its writer flushes a
	// frame whenever its buffer fills).
	gorillaPieces(t, conn, websocket.TextMessage, cyclic(deflateData(0), 0, 100000))
	sent++
	st := srv.Stats()
	require.EqualValues(t, sent, st.DeflateIn, "gorilla compressed every message")
	require.EqualValues(t, sent, st.DeflateOut, "the server echoed every compressed message compressed")
}

// TestInteropGobwasCompression: gobwas/ws's wsflate on the client side, with
// its default parameters (no context takeover), whole messages through its
// frame helpers and fragmented ones through wsutil's streaming writer and
// reader.
func TestInteropGobwasCompression(t *testing.T) {
	t.Parallel()
	srv, addr := startCompressedEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	dialer := gws.Dialer{Extensions: []httphead.Option{wsflate.DefaultParameters.Option()}}
	nc, br, hs, err := dialer.Dial(ctx, "ws://"+addr+"/")
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.Len(t, hs.Extensions, 1)
	var accepted wsflate.Parameters
	require.NoError(t, accepted.Parse(hs.Extensions[0]))
	require.Equal(t, wsflate.DefaultParameters, accepted)
	require.NoError(t, nc.SetDeadline(time.Now().Add(4*wstest.Timeout)))
	var r io.Reader = nc
	if br != nil {
		r = io.MultiReader(br, nc)
	}
	sent := 0
	for _, op := range []gws.OpCode{gws.OpText, gws.OpBinary} {
		for _, n := range interopSizes {
			p := cyclic(deflateData(0), 0, n) // JSON
			if op == gws.OpBinary {
				p = wstest.Payload(n, 3)
			}
			f, err := wsflate.CompressFrame(gws.NewFrame(op, true, p))
			require.NoError(t, err)
			require.NoError(t, gws.WriteFrame(nc, gws.MaskFrameInPlace(f)))
			echo, err := gws.ReadFrame(r)
			require.NoError(t, err)
			compressed, err := wsflate.IsCompressed(echo.Header)
			require.NoError(t, err)
			require.True(t, compressed, "echo of a compressed %d-byte message went uncompressed", n)
			echo, err = wsflate.DecompressFrame(echo)
			require.NoError(t, err)
			require.Equal(t, op, echo.Header.OpCode)
			require.True(t, bytes.Equal(p, echo.Payload), "echo of %d bytes differs at %d", n, wstest.FirstDiff(p, echo.Payload))
			sent++
		}
	}
	// Streaming: a fragmented compressed message through wsutil.Writer, its
	// echo through wsutil.Reader, both with wsflate's message state.
	var wstate, rstate wsflate.MessageState
	ww := wsutil.NewWriterSize(nc, gws.StateClientSide|gws.StateExtended, gws.OpText, 512)
	ww.SetExtensions(&wstate)
	fw := wsflate.NewWriter(ww, func(w io.Writer) wsflate.Compressor {
		c, _ := flate.NewWriter(w, 6)
		return c
	})
	wstate.SetCompressed(true)
	p := cyclic(deflateData(0), 0, 70000)
	_, err = fw.Write(p)
	require.NoError(t, err)
	require.NoError(t, fw.Close())
	require.NoError(t, ww.Flush())
	rd := wsutil.Reader{Source: r, State: gws.StateClientSide | gws.StateExtended, Extensions: []wsutil.RecvExtension{&rstate}}
	h, err := rd.NextFrame()
	require.NoError(t, err)
	require.Equal(t, gws.OpText, h.OpCode)
	require.True(t, rstate.IsCompressed())
	got, err := io.ReadAll(wsflate.NewReader(&rd, func(r io.Reader) wsflate.Decompressor { return flate.NewReader(r) }))
	require.NoError(t, err)
	require.Equal(t, p, got)
	sent++
	st := srv.Stats()
	require.EqualValues(t, sent, st.DeflateIn)
	require.EqualValues(t, sent, st.DeflateOut)
}
