package ws

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync/atomic"
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
// to send, and whether the connection is now a WebSocket. A rejected request
// gets the HTTP status gobwas/ws chooses (400, 405, 426 with
// Sec-WebSocket-Version: 13, 505) and its reason as the body.
func (s *Server) upgrade(data []byte) (n int, resp []byte, ok bool) {
	max := s.limits.Load().MaxHandshakeSize
	end := bytes.Index(data, crlfcrlf)
	if end < 0 {
		if len(data) > max {
			return len(data), httpError(http.StatusRequestHeaderFieldsTooLarge, "handshake request too large"), false
		}
		return 0, nil, false
	}
	n = end + len(crlfcrlf)
	if n > max {
		return n, httpError(http.StatusRequestHeaderFieldsTooLarge, "handshake request too large"), false
	}
	if !validKey(data[:n]) {
		return n, httpError(http.StatusBadRequest, "Sec-WebSocket-Key is not base64 of 16 bytes"), false
	}
	var hio handshakeIO
	hio.r.Reset(data[:n])
	u := s.upgrader
	u.ReadBufferSize = max
	_, err := u.Upgrade(&hio)
	if err != nil {
		if hio.out.Len() == 0 {
			// Not HTTP at all (gobwas stopped reading before it could
			// answer): answer plainly.
			return n, httpError(http.StatusBadRequest, "malformed HTTP request"), false
		}
		return n, hio.out.Bytes(), false
	}
	return n, hio.out.Bytes(), true
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
	for len(req) > 0 {
		line := req
		if i := bytes.IndexByte(req, '\n'); i >= 0 {
			line, req = req[:i], req[i+1:]
		} else {
			req = nil
		}
		if len(line) < len(secKey) || !bytes.EqualFold(line[:len(secKey)], secKey) {
			continue
		}
		v := bytes.TrimSpace(line[len(secKey):])
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

// handshake runs the upgrade once the whole request is in data, then
// delivers OpenEvent and hands any frames pipelined behind the request to
// readFrames.
func (c *Conn) handshake(data []byte) int {
	n, resp, ok := c.ls.s.upgrade(data)
	if n == 0 {
		return 0
	}
	c.rc.Write(resp)
	if !ok {
		count(&c.ls.c.Rejected, 1)
		c.state = stateClosed
		c.rc.CloseGracefully()
		return len(data)
	}
	c.state = stateOpen
	c.opened = true
	c.rc.Established()
	c.lastRead = c.rc.Loop().NowNano()
	c.armDeadline(c.ls.s.limits.Load())
	count(&c.ls.c.Upgraded, 1)
	atomic.AddInt64(&c.ls.c.Connections, 1)
	c.event(Event{Kind: OpenEvent, Conn: c})
	if c.state != stateOpen {
		return len(data)
	}
	return n + c.readFrames(data[n:])
}
