package ws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
	"unicode/utf8"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// FuzzUpgrade feeds arbitrary request bytes to the handshake. It must
// never panic; it may wait for more bytes only while the request has no
// end, no bare LF or CR and fits the size limit; it answers the same
// whether the bytes come at once or in two reads; every answer is an HTTP
// response; and whatever it upgrades is a request that net/http reads the
// same way (GET, HTTP/1.1, one Sec-WebSocket-Key, the same one), with
// lines ending in CRLF and no control character in any field.
func FuzzUpgrade(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 8\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GET"))
	for _, tc := range upgradeCases() { // the table of TestUpgradeStrict
		f.Add([]byte(tc.req))
	}
	cfg := DefaultConfig()
	cfg.MaxHandshakeSize = 1024
	cfg.Compression.Enabled = true // the extension negotiation too
	s := &Server{cfg: cfg}
	lim := cfg.Limits()
	s.limits.Store(&lim)
	f.Fuzz(func(t *testing.T, b []byte) {
		var hs wire.HeadScanner
		n, resp, _, ok := s.upgrade(b, &hs, nil)
		if len(b) > 0 { // the same bytes in two reads
			var hs2 wire.HeadScanner
			cut := int(b[0]) % len(b)
			if n1, _, _, _ := s.upgrade(b[:cut], &hs2, nil); n1 == 0 {
				n2, resp2, _, ok2 := s.upgrade(b, &hs2, nil)
				if n2 != n || ok2 != ok || !bytes.Equal(resp2, resp) {
					t.Fatalf("cut at %d: (%d, %v, %q), at once: (%d, %v, %q)", cut, n2, ok2, resp2, n, ok, resp)
				}
			}
		}
		if n == 0 {
			if bytes.Contains(b, []byte("\r\n\r\n")) || len(b) > cfg.MaxHandshakeSize {
				t.Fatalf("waited for more bytes on a complete or oversized request")
			}
			if bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n")) ||
				bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n"))+bool2int(bytes.HasSuffix(b, []byte("\r"))) {
				t.Fatalf("waited for more bytes after a bare LF or CR")
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
		if ok {
			checkUpgraded(t, b[:n], resp)
		}
	})
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkUpgraded holds a request the server upgraded against net/http's
// reading of it.
func checkUpgraded(t *testing.T, req, resp []byte) {
	t.Helper()
	for i, c := range req {
		if c == '\n' && (i == 0 || req[i-1] != '\r') || c == '\r' && (i+1 == len(req) || req[i+1] != '\n') {
			t.Fatalf("upgraded a request with a bare CR or LF at %d: %q", i, req)
		}
		if c < ' ' && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
			t.Fatalf("upgraded a request with control byte %#x: %q", c, req)
		}
	}
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
	if err != nil {
		t.Fatalf("upgraded a request net/http refuses (%v): %q", err, req)
	}
	keys := hr.Header.Values("Sec-WebSocket-Key")
	if hr.Method != "GET" || hr.Proto != "HTTP/1.1" || len(keys) != 1 || len(hr.Header.Values("Host"))+len(hr.Host) == 0 {
		t.Fatalf("upgraded %q: net/http reads method %q, %s, keys %q", req, hr.Method, hr.Proto, keys)
	}
	if want := "Sec-WebSocket-Accept: " + wstest.AcceptKey(keys[0]) + "\r\n"; !bytes.Contains(resp, []byte(want)) {
		t.Fatalf("response %q lacks %q", resp, want)
	}
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
			checkClose(t, f)
		}
	})
}

// checkClose fails t if f is a close frame with a code the server may not
// send.
func checkClose(t *testing.T, f wstest.Frame) {
	t.Helper()
	if p := f.Payload; f.Op == gws.OpClose && len(p) >= 2 {
		code := StatusCode(uint16(p[0])<<8 | uint16(p[1]))
		if !wire.ValidCloseCode(code) {
			t.Fatalf("server closed with code %d", code)
		}
	}
}

// FuzzServerInflate sends a compressed message with arbitrary deflate data
// (permessage-deflate negotiated), in fragments of a fuzzed size, to a live
// server. The server either echoes it, compressed, as what the standard
// library inflates the data to, or closes with 1002 (data that does not
// inflate), 1007 (text that is not UTF-8) or 1009 (over the limit); and it
// stays up.
func FuzzServerInflate(f *testing.F) {
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, true, uint8(0))                     // RFC 7692 §7.2.3.1 "Hello"
	f.Add([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, true, uint8(3))                     // with BFINAL
	f.Add([]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e', 'l', 'l', 'o', 0x00}, false, uint8(2)) // stored
	f.Add([]byte{0x07}, false, uint8(0))
	f.Add([]byte{0x62, 0x18, 0x05, 0xa3, 0x60, 0x14, 0x0c, 0x77, 0x00, 0x00}, false, uint8(1)) // many zeros
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.MaxMessageSize, cfg.MaxFrameSize = 1<<16, 1<<16
	cfg.LingerTimeout = 100 * time.Millisecond
	cfg.Compression.Enabled = true
	srv := startServer(f, cfg, echoHandler)
	f.Fuzz(func(t *testing.T, data []byte, text bool, frag uint8) {
		want, werr := stdInflate(data, int(cfg.MaxMessageSize))
		c := wstest.DialRaw(t, srv.Addr().String())
		defer c.Close()
		if err := c.HandshakeOffer(srv.Addr().String(), "permessage-deflate"); err != nil || c.Deflate == nil {
			t.Fatalf("handshake: %v", err)
		}
		op := gws.OpBinary
		if text {
			op = gws.OpText
		}
		c.Conn().SetDeadline(time.Now().Add(5 * time.Second))
		c.Conn().Write(wstest.Compressed(op, data, int(frag)))
		fr, err := c.ReadFrame()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if fr.Op == gws.OpClose {
			checkClose(t, fr)
			code := int(fr.Payload[0])<<8 | int(fr.Payload[1])
			switch {
			case code == 1002 && werr != nil && werr != errTooBig,
				code == 1009 && werr == errTooBig,
				code == 1007 && text && (werr == nil || werr == errStray) && !utf8.Valid(want):
			default:
				t.Fatalf("closed with %d; the standard library inflates %d bytes, %v", code, len(want), werr)
			}
			return
		}
		if werr != nil && werr != errStray || fr.Op != op || fr.Rsv != 4 {
			t.Fatalf("echo %v of data the standard library says %v", fr, werr)
		}
		got, err := c.Deflate.Inflate(fr.Payload, int(cfg.MaxMessageSize))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("echo inflates to %d bytes (%v), want %d", len(got), err, len(want))
		}
	})
}

var (
	errTooBig = errors.New("over the limit")
	errStray  = errors.New("a byte or two after a final block")
)

// stdInflate inflates a message's deflate data as RFC 7692 §7.2.2 says,
// with the standard library: the reference the server is held to. The
// data gets the sync tail and an empty final block (as the server appends
// them), so a well-formed message ends with io.EOF and leaves nothing
// unread, or ends with a final block of its own and leaves the tail unread.
// One or two stray bytes after a final block (errStray) are data the server
// may or may not notice (package deflate explains why).
func stdInflate(data []byte, max int) ([]byte, error) {
	in := bytes.NewReader(append(bytes.Clone(data), 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff))
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(in), int64(max)+1))
	switch {
	case len(out) > max:
		return nil, errTooBig
	case err != nil:
		return nil, err
	case in.Len() > 11:
		return nil, errors.New("bytes after a final block")
	case in.Len() > 9:
		return out, errStray
	}
	return out, nil
}
