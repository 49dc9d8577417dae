package ws

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// FuzzUpgrade feeds arbitrary request bytes to the handshake: it must never
// panic, must wait for more bytes only while the request is incomplete and
// within the size limit, and must always answer with an HTTP response.
func FuzzUpgrade(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 8\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GET"))
	cfg := DefaultConfig()
	cfg.MaxHandshakeSize = 1024
	s := &Server{cfg: cfg}
	lim := cfg.Limits()
	s.limits.Store(&lim)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, resp, ok := s.upgrade(b)
		if n == 0 {
			if bytes.Contains(b, crlfcrlf) || len(b) > cfg.MaxHandshakeSize {
				t.Fatalf("waited for more bytes on a complete or oversized request")
			}
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 ")) {
			t.Fatalf("response %q is not HTTP", resp)
		}
		if ok != bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("ok=%v with response %q", ok, resp)
		}
	})
}

// FuzzServerStream sends arbitrary bytes after a good handshake to a live
// server. Whatever they are, the server answers with well-formed frames,
// closes only with a code RFC 6455 allows, and stays up for the next input.
func FuzzServerStream(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1})
	f.Add([]byte{0x01, 0x81, 0, 0, 0, 0, 'a', 0x89, 0x80, 0, 0, 0, 0, 0x80, 0x81, 0, 0, 0, 0, 'b'})
	f.Add([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8})
	f.Add([]byte{0x81, 0x81, 0, 0, 0, 0, 0xff})
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.MaxMessageSize, cfg.MaxFrameSize = 1<<16, 1<<16
	cfg.LingerTimeout = 100 * time.Millisecond
	srv := startServer(f, cfg, echoHandler)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := wstest.Dial(t, srv.Addr().String())
		defer c.Close()
		c.Conn().SetDeadline(time.Now().Add(5 * time.Second))
		c.Conn().Write(b)
		c.Conn().(*net.TCPConn).CloseWrite()
		for {
			f, err := c.ReadFrame()
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatalf("server neither answered nor closed: %v", err)
			case errors.Is(err, wstest.ErrMasked), errors.Is(err, wstest.ErrNonMinimal):
				t.Fatal(err)
			case err != nil:
				return // EOF or reset after our half-close: fine
			}
			if f.Rsv != 0 {
				t.Fatalf("server frame %v has RSV bits", f)
			}
			if p := f.Payload; f.Op == gws.OpClose && len(p) >= 2 {
				code := StatusCode(uint16(p[0])<<8 | uint16(p[1]))
				if !wire.ValidCloseCode(code) {
					t.Fatalf("server closed with code %d", code)
				}
			}
		}
	})
}
