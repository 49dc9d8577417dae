package ws

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/ws/internal/deflate"
)

var crlfcrlf = []byte("\r\n\r\n")

// handshakeIO feeds gobwas/ws's Upgrader one complete request and collects
// its response, so the upgrade runs on the loop thread without blocking.
type handshakeIO struct {
	r   bytes.Reader
	out bytes.Buffer
}

func (h *handshakeIO) Read(p []byte) (int, error)  { return h.r.Read(p) }
func (h *handshakeIO) Write(p []byte) (int, error) { return h.out.Write(p) }

// upgrade handles bytes received before the handshake completed. It returns
// how many bytes the request took (0 while it is incomplete), the response
// to send, the connection's permessage-deflate state when that was
// negotiated, and whether the connection is now a WebSocket. A rejected
// request gets the HTTP status gobwas/ws chooses (400, 405, 426 with
// Sec-WebSocket-Version: 13, 505) and its reason as the body.
func (s *Server) upgrade(data []byte) (n int, resp []byte, z *connDeflate, ok bool) {
	max := s.limits.Load().MaxHandshakeSize
	end := bytes.Index(data, crlfcrlf)
	if end < 0 {
		if len(data) > max {
			return len(data), httpError(http.StatusRequestHeaderFieldsTooLarge, "handshake request too large"), nil, false
		}
		return 0, nil, nil, false
	}
	n = end + len(crlfcrlf)
	if n > max {
		return n, httpError(http.StatusRequestHeaderFieldsTooLarge, "handshake request too large"), nil, false
	}
	if !validKey(data[:n]) {
		return n, httpError(http.StatusBadRequest, "Sec-WebSocket-Key is not base64 of 16 bytes"), nil, false
	}
	var hio handshakeIO
	hio.r.Reset(data[:n])
	u := s.upgrader
	u.ReadBufferSize = max
	if s.cfg.Compression.Enabled {
		var ext []byte
		z, ext = s.negotiateDeflate(data[:n])
		if z != nil {
			u.OnBeforeUpgrade = func() (gws.HandshakeHeader, error) { return gws.HandshakeHeaderBytes(ext), nil }
		}
	}
	_, err := u.Upgrade(&hio)
	if err != nil {
		if hio.out.Len() == 0 {
			// Not HTTP at all (gobwas stopped reading before it could
			// answer): answer plainly.
			return n, httpError(http.StatusBadRequest, "malformed HTTP request"), nil, false
		}
		return n, hio.out.Bytes(), nil, false
	}
	return n, hio.out.Bytes(), z, true
}

var secExtensions = []byte("sec-websocket-extensions:")

// negotiateDeflate runs the permessage-deflate negotiation (RFC 7692 §5)
// on a request's Sec-WebSocket-Extensions headers. It returns the
// connection's state and the response header line, or nil when no offer
// was acceptable (the connection then goes on uncompressed).
//
// The offers are parsed by package deflate rather than gobwas/ws's
// wsflate, which fails the whole upgrade on a bad offer instead of trying
// the next, accepts a duplicated client_max_window_bits, and answers with
// its configured parameters rather than the agreed ones (a client asking
// for server_max_window_bits=10 would be told 15).
func (s *Server) negotiateDeflate(req []byte) (*connDeflate, []byte) {
	p, ext, ok := deflate.Negotiate(headerValues(req, secExtensions), s.cfg.Compression.policy())
	if !ok {
		return nil, nil
	}
	line := append([]byte("Sec-WebSocket-Extensions: "), ext...)
	return &connDeflate{p: p}, append(line, "\r\n"...)
}

// httpError is a complete response refusing the upgrade with status code.
func httpError(code int, reason string) []byte {
	b := append([]byte("HTTP/1.1 "), strconv.Itoa(code)...)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(reason)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, reason...)
}

var secKey = []byte("sec-websocket-key:")

// validKey checks every Sec-WebSocket-Key header in req: RFC 6455 §4.2.1
// item 5 wants the base64 of 16 bytes, and gobwas/ws checks only that it is
// 24 characters long. A request without the header is left to gobwas, which
// answers 400 for it.
func validKey(req []byte) bool {
	for _, v := range headerValues(req, secKey) {
		var nonce [18]byte // 24 base64 characters decode to at most 18 bytes
		if len(v) != 24 {
			return false
		}
		n, err := base64.StdEncoding.Decode(nonce[:], v)
		if err != nil || n != 16 {
			return false
		}
	}
	return true
}

// headerValues returns the values, trimmed of whitespace, of the header
// lines of req whose name (with its colon, lower case) is name.
func headerValues(req, name []byte) [][]byte {
	var vs [][]byte
	for len(req) > 0 {
		line := req
		if i := bytes.IndexByte(req, '\n'); i >= 0 {
			line, req = req[:i], req[i+1:]
		} else {
			req = nil
		}
		if len(line) >= len(name) && bytes.EqualFold(line[:len(name)], name) {
			vs = append(vs, bytes.TrimSpace(line[len(name):]))
		}
	}
	return vs
}

// handshake runs the upgrade once the whole request is in data, then
// delivers OpenEvent and hands any frames pipelined behind the request to
// readFrames.
func (c *Conn) handshake(data []byte) int {
	n, resp, z, ok := c.ls.s.upgrade(data)
	if n == 0 {
		return 0
	}
	if ok && c.ip != nil && c.ip.over {
		resp, ok = httpError(http.StatusTooManyRequests, "too many connections from this address"), false
	}
	c.rc.Write(resp)
	if !ok {
		count(&c.ls.c.Rejected, 1)
		c.state = stateClosed
		c.rc.CloseGracefully()
		return len(data)
	}
	c.state, c.z = stateOpen, z
	if c.over {
		count(&c.ls.c.OverCap, 1)
		c.fail(errOverCapacity)
		return len(data)
	}
	c.opened = true
	c.rc.SetDeadline(time.Time{})
	if idle := c.ls.s.limits.Load().IdleTimeout; idle > 0 {
		c.rc.SetDeadline(c.rc.Loop().Now().Add(idle / 2))
	}
	count(&c.ls.c.Upgraded, 1)
	atomic.AddInt64(&c.ls.c.Connections, 1)
	c.event(Event{Kind: OpenEvent, Conn: c})
	if c.state != stateOpen {
		return len(data)
	}
	return n + c.readFrames(data[n:])
}
