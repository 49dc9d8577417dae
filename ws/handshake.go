package ws

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/hioload-ws/hioload-ws/ws/internal/deflate"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// The opening handshake (RFC 6455 §4.2): the request is read strictly by
// wire.HeadScanner and wire.ParseRequest (the HTTP syntax, the request
// line, Host and the single-valued fields), checked here against §4.2.1,
// and answered with 101 or an HTTP error. It runs on the loop thread, once
// per connection, and allocates only the response.
//
// gobwas/ws's Upgrader did this before, and took too much (issue #14):
// a repeated Sec-WebSocket-Key (the last won), whitespace before a colon,
// NUL and CR inside names and values, HTTP/1.2, "GET *", and bare-LF line
// ends, which it read differently from the CRLF framing around it (bytes
// between a bare-LF empty line and the next CRLFCRLF were silently
// dropped). Its checks cannot be tightened from outside, so the request is
// parsed here; the frames are still gobwas/ws's types.

// Refusals of requests that are good HTTP but not a WebSocket upgrade this
// server takes (RFC 6455 §4.2.1, §4.4).
var (
	errTooLarge   = &wire.RequestError{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "handshake request too large"}
	errNoUpgrade  = &wire.RequestError{Status: http.StatusBadRequest, Reason: "Upgrade must name websocket"}
	errNoConnUpg  = &wire.RequestError{Status: http.StatusBadRequest, Reason: "Connection must name Upgrade"}
	errNoVersion  = &wire.RequestError{Status: http.StatusBadRequest, Reason: "missing Sec-WebSocket-Version"}
	errBadVersion = &wire.RequestError{Status: http.StatusUpgradeRequired, Reason: "unsupported Sec-WebSocket-Version", Header: "Sec-WebSocket-Version: 13\r\n"}
	errBadKey     = &wire.RequestError{Status: http.StatusBadRequest, Reason: "Sec-WebSocket-Key is not base64 of 16 bytes"}
	errOrigin     = &wire.RequestError{Status: http.StatusForbidden, Reason: "origin not allowed"}
)

// upgrade handles the bytes received before the handshake completed (the
// same start each time, more bytes each call; hs remembers how far they
// were scanned). It returns how many bytes the request took (0 while it is
// incomplete and may still be good), the response to send, the
// connection's permessage-deflate state when that was negotiated, and
// whether the connection is now a WebSocket. A broken request is answered as soon as
// its first bad line is in, not when the rest (or the handshake timeout)
// comes.
//
// The 101 response is written into out's scratch memory when out is not
// nil (the connection's, Conn.handshake), so that an upgrade allocates
// nothing; a refusal, rare, is allocated.
func (s *Server) upgrade(data []byte, hs *wire.HeadScanner, out scratcher) (n int, resp []byte, z *connDeflate, ok bool) {
	limit := s.limits.Load().MaxHandshakeSize
	n, err := hs.Scan(data)
	switch {
	case err != nil:
		return len(data), refusal(err), nil, false
	case n == 0 && len(data) > limit, n > limit:
		return max(n, len(data)), refusal(errTooLarge), nil, false
	case n == 0:
		return 0, nil, nil, false
	}
	var req wire.Request
	if err := wire.ParseRequest(data[:n], &req); err != nil {
		return n, refusal(err), nil, false
	}
	if err := s.checkUpgrade(&req); err != nil {
		return n, refusal(err), nil, false
	}
	resp, z = s.accept(&req, out)
	return n, resp, z, true
}

// checkUpgrade applies RFC 6455 §4.2.1 to a well-formed GET request for
// HTTP/1.1 with a Host, and the allowed origins.
func (s *Server) checkUpgrade(r *wire.Request) error {
	switch {
	case !r.HasToken("Upgrade", "websocket"):
		return errNoUpgrade
	case !r.HasToken("Connection", "Upgrade"):
		return errNoConnUpg
	case r.Version == nil:
		return errNoVersion
	case string(r.Version) != "13":
		return errBadVersion
	case !validKey(r.Key):
		return errBadKey
	case r.Origin != nil && !s.originAllowed(r.Origin):
		return errOrigin
	}
	return nil
}

// accept is the 101 response to r, and the connection's permessage-deflate
// state when that was negotiated. A negotiation that adds response fields
// (extensions, subprotocols) reads its request fields with r.Values and
// appends its lines before the final CRLF.
func (s *Server) accept(r *wire.Request, out scratcher) ([]byte, *connDeflate) {
	size := 160 // the fields below
	if s.cfg.Compression.Enabled {
		size += 160 // and the longest Sec-WebSocket-Extensions answer
	}
	var b []byte
	if out != nil {
		b = out.Scratch(size)[:0]
	} else {
		b = make([]byte, 0, size)
	}
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = appendAcceptKey(b, r.Key)
	b = append(b, "\r\n"...)
	var z *connDeflate
	b, z = s.negotiateDeflate(b, r)
	return append(b, "\r\n"...), z
}

// negotiateDeflate runs the permessage-deflate negotiation (RFC 7692 §5)
// on every Sec-WebSocket-Extensions field of r, in order, when compression
// is on. It appends the response field to b and returns the connection's
// state, or returns b unchanged and nil when no offer was acceptable (the
// connection then goes on uncompressed).
//
// The offers are parsed by package deflate rather than gobwas/ws's
// wsflate, which fails the whole upgrade on a bad offer instead of trying
// the next, accepts a duplicated client_max_window_bits, and answers with
// its configured parameters rather than the agreed ones (a client asking
// for server_max_window_bits=10 would be told 15).
func (s *Server) negotiateDeflate(b []byte, r *wire.Request) ([]byte, *connDeflate) {
	if !s.cfg.Compression.Enabled {
		return b, nil
	}
	const field = "Sec-WebSocket-Extensions: "
	p, nb, ok := deflate.Negotiate(append(b, field...), r.Values("Sec-WebSocket-Extensions"), s.cfg.Compression.policy())
	if !ok {
		return b, nil
	}
	return append(nb, "\r\n"...), &connDeflate{p: p}
}

// scratcher gives memory that stays valid until the connection's pending
// writes are flushed (reactor.Conn.Scratch).
type scratcher interface{ Scratch(n int) []byte }

// acceptGUID is RFC 6455 §1.3's GUID, hashed with the key for
// Sec-WebSocket-Accept.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// appendAcceptKey appends Sec-WebSocket-Accept for key, a valid key of 24
// characters (RFC 6455 §4.2.2 item 5.4): base64 of the SHA-1 of the key
// and the GUID.
func appendAcceptKey(b, key []byte) []byte {
	var in [24 + len(acceptGUID)]byte
	copy(in[copy(in[:], key):], acceptGUID)
	sum := sha1.Sum(in[:])
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// validKey reports whether key is the base64 of 16 bytes (RFC 6455 §4.2.1
// item 5): 24 characters, of which the last two are padding.
func validKey(key []byte) bool {
	var nonce [18]byte // 24 base64 characters decode to at most 18 bytes
	if len(key) != 24 {
		return false
	}
	n, err := base64.StdEncoding.Decode(nonce[:], key)
	return err == nil && n == 16
}

// refusal is the complete response refusing an upgrade for err (a
// *wire.RequestError): its status, extra header lines and its reason as
// the body.
func refusal(err error) []byte {
	e, ok := err.(*wire.RequestError)
	if !ok {
		e = &wire.RequestError{Status: http.StatusBadRequest, Reason: "malformed HTTP request"}
	}
	return httpError(e.Status, e.Reason, e.Header)
}

// httpError is a complete response refusing the upgrade with status code,
// the given header lines (each ending in CRLF), and reason as the body.
func httpError(code int, reason, header string) []byte {
	b := append([]byte("HTTP/1.1 "), strconv.Itoa(code)...)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	b = append(b, header...)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(reason)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, reason...)
}

// handshake runs the upgrade once the whole request is in data, then
// delivers OpenEvent and hands any frames pipelined behind the request to
// readFrames.
func (c *Conn) handshake(data []byte) int {
	n, resp, z, ok := c.ls.s.upgrade(data, &c.hs, c.rc)
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
	c.state, c.z = stateOpen, z
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
