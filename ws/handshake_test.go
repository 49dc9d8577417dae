package ws

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// upgradeCase is a request, byte for byte, and the exact response.
type upgradeCase struct {
	name string
	req  string
	resp string // "": the RFC 6455 §1.3 example's 101
	used int    // bytes the request takes; 0: all of req
}

// rfcKey and rfcAccept are RFC 6455 §1.3's example key and its answer.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// goodHead is a valid request head without its final CRLF; upgradeReq
// edits it.
const goodHead = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n"

// upgradeReq is the good request with old replaced by new (old must be
// there) and extra fields added at the end.
func upgradeReq(old, new, extra string) string {
	if !strings.Contains(goodHead, old) {
		panic("upgradeReq: no " + old)
	}
	return strings.Replace(goodHead, old, new, 1) + extra + "\r\n"
}

// refused is the exact response refusing a request: written out here, not
// built by the code under test.
func refused(status int, reason, header string) string {
	return fmt.Sprintf("HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), header, len(reason), reason)
}

func bad(reason string) string { return refused(400, reason, "") }

func upgradeCases() []upgradeCase {
	accepted := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n"
	key := "Sec-WebSocket-Key: " + rfcKey + "\r\n"
	head := upgradeReq("", "", "")
	return []upgradeCase{
		{"RFC 6455 §1.3 example", head, accepted, 0},
		{"frames pipelined behind the request", head + "\x81\x85", accepted, len(head)},
		{"absolute http URI", upgradeReq("GET /chat ", "GET http://server.example.com/chat?a=%41 ", ""), accepted, 0},
		{"absolute wss URI", upgradeReq("GET /chat ", "GET wss://server.example.com/ ", ""), accepted, 0},
		{"absolute ws URI with IPv6 and a port, no path", upgradeReq("GET /chat ", "GET ws://[::1]:9001 ", ""), accepted, 0},
		{"token lists, other cases, whitespace around values", upgradeReq("Upgrade: websocket\r\nConnection: Upgrade",
			"upgrade: h2c,\tWebSocket \r\nConnection:keep-alive , upgrade", "X-Empty:\r\nX-Text: caf\xc3\xa9\r\n"), accepted, 0},
		{"Upgrade split over two fields", upgradeReq("Upgrade: websocket", "Upgrade: h2c\r\nUpgrade: websocket", ""), accepted, 0},
		{"Content-Length: 0", upgradeReq("", "", "Content-Length: 0\r\n"), accepted, 0},

		// Issue #14 point 8: what was accepted and must not be.
		{"Sec-WebSocket-Key twice", upgradeReq("", "", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"), bad(wire.ErrDupKey.Reason), 0},
		{"Sec-WebSocket-Key twice, same value", upgradeReq("", "", key), bad(wire.ErrDupKey.Reason), 0},
		{"Sec-WebSocket-Key twice, the first empty", upgradeReq(key, "Sec-WebSocket-Key:\r\n"+key, ""), bad(wire.ErrDupKey.Reason), 0},
		{"space before the colon", upgradeReq(key, "Sec-WebSocket-Key : "+rfcKey+"\r\n", ""), bad(wire.ErrSpaceColon.Reason), 0},
		{"tab before the colon", upgradeReq("", "", "X-A\t: 1\r\n"), bad(wire.ErrSpaceColon.Reason), 0},
		{"NUL in a field name", upgradeReq("", "", "X-\x00A: 1\r\n"), bad(wire.ErrFieldName.Reason), 0},
		{"NUL in a field value", upgradeReq("", "", "X-A: a\x00b\r\n"), bad(wire.ErrFieldValue.Reason), 0},
		{"NUL after the key", upgradeReq(rfcKey, rfcKey+"\x00", ""), bad(wire.ErrFieldValue.Reason), 0},
		{"CR in a field name", upgradeReq("", "", "X-\rA: 1\r\n"), bad(wire.ErrBareCR.Reason), 0},
		{"CR in a field value", upgradeReq("", "", "X-A: a\rb\r\n"), bad(wire.ErrBareCR.Reason), 0},
		{"HTTP/1.2", upgradeReq("HTTP/1.1", "HTTP/1.2", ""), bad(wire.ErrNoSuchVersion.Reason), 0},
		{"GET *", upgradeReq("GET /chat ", "GET * ", ""), bad(wire.ErrTarget.Reason), 0},
		{"bare LF line ends, answered at once", "GET /chat HTTP/1.1\nHost: x\n", bad(wire.ErrBareLF.Reason), 0},
		{"bare LF after the request line, answered at once", "GET /chat HTTP/1.1\n", bad(wire.ErrBareLF.Reason), 0},
		{"a bare-LF empty line, CRLFCRLF later", upgradeReq("Upgrade: websocket\r\n", "Upgrade: websocket\n\nX: y\r\n", ""), bad(wire.ErrBareLF.Reason), 0},
		{"bare CR, answered at once", "GET /chat HTTP/1.1\r\nHost: x\rX", bad(wire.ErrBareCR.Reason), 0},

		// More of RFC 9112 and RFC 6455 §4.2.1.
		{"empty line first", "\r\n" + head, bad(wire.ErrRequestLine.Reason), 0},
		{"two spaces in the request line", upgradeReq("GET /chat", "GET  /chat", ""), bad(wire.ErrRequestLine.Reason), 0},
		{"lower-case version", upgradeReq("HTTP/1.1", "http/1.1", ""), bad(wire.ErrVersionSyntax.Reason), 0},
		{"space after the version", upgradeReq("HTTP/1.1", "HTTP/1.1 ", ""), bad(wire.ErrVersionSyntax.Reason), 0},
		{"HTTP/1.0", upgradeReq("HTTP/1.1", "HTTP/1.0", ""), refused(505, wire.ErrVersion.Reason, ""), 0},
		{"HTTP/2 preface, answered at its first line", "PRI * HTTP/2.0\r\n", refused(505, wire.ErrVersion.Reason, ""), 0},
		{"POST", upgradeReq("GET", "POST", ""), refused(405, wire.ErrMethod.Reason, "Allow: GET\r\n"), 0},
		{"lower-case get", upgradeReq("GET", "get", ""), refused(405, wire.ErrMethod.Reason, "Allow: GET\r\n"), 0},
		{"target without a slash", upgradeReq("GET /chat ", "GET chat ", ""), bad(wire.ErrTarget.Reason), 0},
		{"fragment in the target", upgradeReq("GET /chat ", "GET /chat#x ", ""), bad(wire.ErrTarget.Reason), 0},
		{"bad percent escape", upgradeReq("GET /chat ", "GET /c%zz ", ""), bad(wire.ErrTarget.Reason), 0},
		{"non-ASCII in the target", upgradeReq("GET /chat ", "GET /caf\xc3\xa9 ", ""), bad(wire.ErrTarget.Reason), 0},
		{"ftp URI", upgradeReq("GET /chat ", "GET ftp://x/ ", ""), bad(wire.ErrTarget.Reason), 0},
		{"absolute URI with userinfo", upgradeReq("GET /chat ", "GET ws://u@x/ ", ""), bad(wire.ErrTarget.Reason), 0},
		{"absolute URI without a host", upgradeReq("GET /chat ", "GET ws:///chat ", ""), bad(wire.ErrTarget.Reason), 0},
		{"absolute URI with an escape in the host", upgradeReq("GET /chat ", "GET http://%00 ", ""), bad(wire.ErrTarget.Reason), 0},
		{"absolute URI with a bad port", upgradeReq("GET /chat ", "GET ws://x:8a/ ", ""), bad(wire.ErrTarget.Reason), 0},
		{"absolute URI with a bracketed host that is not IPv6", upgradeReq("GET /chat ", "GET ws://[0]/ ", ""), bad(wire.ErrTarget.Reason), 0},
		{"brackets in the path", upgradeReq("GET /chat ", "GET /[x] ", ""), bad(wire.ErrTarget.Reason), 0},
		{"obsolete line folding", upgradeReq("", "", "X-A: 1\r\n 2\r\n"), bad(wire.ErrFolding.Reason), 0},
		{"empty field name", upgradeReq("", "", ": 1\r\n"), bad(wire.ErrFieldName.Reason), 0},
		{"line without a colon", upgradeReq("", "", "not a header\r\n"), bad(wire.ErrNoColon.Reason), 0},
		{"DEL in a value", upgradeReq("", "", "X-A: \x7f\r\n"), bad(wire.ErrFieldValue.Reason), 0},
		{"Host twice", upgradeReq("", "", "Host: other\r\n"), bad(wire.ErrDupHost.Reason), 0},
		{"Origin twice", upgradeReq("", "", "Origin: http://a\r\nOrigin: http://b\r\n"), bad(wire.ErrDupOrigin.Reason), 0},
		{"Sec-WebSocket-Version twice", upgradeReq("", "", "Sec-WebSocket-Version: 13\r\n"), bad(wire.ErrDupVersion.Reason), 0},
		{"a body", upgradeReq("", "", "Content-Length: 5\r\n"), bad(wire.ErrBody.Reason), 0},
		{"chunked", upgradeReq("", "", "Transfer-Encoding: chunked\r\n"), bad(wire.ErrBody.Reason), 0},
		{"101 fields", upgradeReq("", "", strings.Repeat("X: y\r\n", 96)), refused(431, wire.ErrTooManyFields.Reason, ""), 0},
		{"no Host", upgradeReq("Host: server.example.com\r\n", "", ""), bad(wire.ErrNoHost.Reason), 0},
		{"empty Host", upgradeReq("Host: server.example.com", "Host: ", ""), bad(wire.ErrHost.Reason), 0},
		{"Host with userinfo", upgradeReq("Host: server.example.com", "Host: u@x", ""), bad(wire.ErrHost.Reason), 0},
		{"Host with a path", upgradeReq("Host: server.example.com", "Host: x/y", ""), bad(wire.ErrHost.Reason), 0},
		{"Host: [::1]:9001", upgradeReq("Host: server.example.com", "Host: [::1]:9001", ""), accepted, 0},
		{"Upgrade: h2c", upgradeReq("Upgrade: websocket", "Upgrade: h2c", ""), bad(errNoUpgrade.Reason), 0},
		{"Upgrade: websocket2", upgradeReq("Upgrade: websocket", "Upgrade: websocket2", ""), bad(errNoUpgrade.Reason), 0},
		{"Connection: keep-alive", upgradeReq("Connection: Upgrade", "Connection: keep-alive", ""), bad(errNoConnUpg.Reason), 0},
		{"no Sec-WebSocket-Version", upgradeReq("Sec-WebSocket-Version: 13\r\n", "", ""), bad(errNoVersion.Reason), 0},
		{"Sec-WebSocket-Version: 8", upgradeReq("Version: 13", "Version: 8", ""), refused(426, errBadVersion.Reason, "Sec-WebSocket-Version: 13\r\n"), 0},
		{"no Sec-WebSocket-Key", upgradeReq(key, "", ""), bad(errBadKey.Reason), 0},
		{"key of 15 bytes", upgradeReq(rfcKey, "AAAAAAAAAAAAAAAAAAAA", ""), bad(errBadKey.Reason), 0},
		{"key of 24 characters, not base64", upgradeReq(rfcKey, "dGhlIHNhbXBsZSBub25jZQ!!", ""), bad(errBadKey.Reason), 0},
		{"too large", upgradeReq("", "", "X: "+strings.Repeat("a", 1100)+"\r\n"), refused(431, errTooLarge.Reason, ""), 0},
	}
}

// TestUpgradeStrict: each request of the table, whole and one byte at a
// time, gets exactly its response; the refusals come as soon as the bad
// byte is in.
func TestUpgradeStrict(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHandshakeSize = 1024
	s := &Server{cfg: cfg}
	lim := cfg.Limits()
	s.limits.Store(&lim)
	for _, tc := range upgradeCases() {
		t.Run(tc.name, func(t *testing.T) {
			want, used := tc.resp, tc.used
			if used == 0 {
				used = len(tc.req)
			}
			var hs wire.HeadScanner
			n, resp, _, ok := s.upgrade([]byte(tc.req), &hs, nil)
			require.Equal(t, want, string(resp))
			require.Equal(t, strings.HasPrefix(want, "HTTP/1.1 101 "), ok)
			if ok || len(tc.req) <= cfg.MaxHandshakeSize {
				require.Equal(t, used, n, "bytes taken")
			}

			// One byte at a time: no answer before the byte that decides.
			var hs1 wire.HeadScanner
			for i := 1; i <= len(tc.req); i++ {
				n, resp, _, ok1 := s.upgrade([]byte(tc.req[:i]), &hs1, nil)
				if n == 0 {
					require.Nil(t, resp)
					continue
				}
				require.Equal(t, want, string(resp), "after %d bytes", i)
				require.Equal(t, ok, ok1)
				break
			}
		})
	}
}

// TestParseRequestFields: the request's fields are all there, in order,
// for a negotiation to read (Values, HasToken).
func TestParseRequestFields(t *testing.T) {
	head := upgradeReq("", "", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"+
		"sec-websocket-extensions: x-foo\r\nSec-WebSocket-Protocol: chat, superchat\r\n")
	var r wire.Request
	require.NoError(t, wire.ParseRequest([]byte(head), &r))
	require.Equal(t, "GET", string(r.Method))
	require.Equal(t, "/chat", string(r.Target))
	require.Len(t, r.Fields(), 8)
	require.Equal(t, "Sec-WebSocket-Protocol", string(r.Fields()[7].Name))
	var ext []string
	for v := range r.Values("Sec-WebSocket-Extensions") {
		ext = append(ext, string(v))
	}
	require.Equal(t, []string{"permessage-deflate; client_max_window_bits", "x-foo"}, ext)
	require.True(t, r.HasToken("sec-websocket-protocol", "superchat"))
	require.False(t, r.HasToken("Sec-WebSocket-Protocol", "super"))
	require.Equal(t, rfcKey, string(r.Key))
	require.Equal(t, "server.example.com", string(r.Host))
	require.Nil(t, r.Origin)
}

// testScratch is a connection's scratch memory, for upgrade.
type testScratch struct{ b [512]byte }

func (s *testScratch) Scratch(n int) []byte { return s.b[:n:n] }

// TestUpgradeAllocs: a good upgrade allocates nothing: its response is
// written in the connection's scratch memory (before, it allocated the
// response: garbage an accept burst left among its connections); with
// permessage-deflate, the connection's deflate state.
func TestUpgradeAllocs(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("allocation counts are unreliable under -race")
	}
	cfg := DefaultConfig()
	s := &Server{cfg: cfg}
	lim := cfg.Limits()
	s.limits.Store(&lim)
	req := []byte(upgradeReq("", "", "User-Agent: x\r\nOrigin: http://a\r\n"))
	out := &testScratch{}
	allocs := testing.AllocsPerRun(100, func() {
		var hs wire.HeadScanner
		if _, _, _, ok := s.upgrade(req, &hs, out); !ok {
			panic("refused")
		}
	})
	require.Zero(t, allocs)

	// With permessage-deflate negotiated, the longest answer: the response
	// and the connection's deflate state.
	s.cfg.Compression.Enabled = true
	s.cfg.Compression.ServerContextTakeover = false
	s.cfg.Compression.ServerWindowBits = 10
	req = []byte(upgradeReq("", "", "Sec-WebSocket-Extensions: x-foo, permessage-deflate; client_max_window_bits=15; server_max_window_bits=15\r\n"))
	allocs = testing.AllocsPerRun(100, func() {
		var hs wire.HeadScanner
		_, resp, z, ok := s.upgrade(req, &hs, out)
		if !ok || z == nil {
			panic("refused")
		}
		if !bytes.Contains(resp, []byte("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10\r\n\r\n")) {
			panic(string(resp))
		}
	})
	require.LessOrEqual(t, allocs, 1.0)
}

// BenchmarkUpgrade: the parse, the checks and the response of a browser's
// upgrade request.
func BenchmarkUpgrade(b *testing.B) {
	cfg := DefaultConfig()
	s := &Server{cfg: cfg}
	lim := cfg.Limits()
	s.limits.Store(&lim)
	req := []byte(upgradeReq("GET /chat ", "GET /chat?room=1 ", "Origin: https://example.com\r\n"+
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n"+
		"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	out := &testScratch{}
	for b.Loop() {
		var hs wire.HeadScanner
		if _, _, _, ok := s.upgrade(req, &hs, out); !ok {
			b.Fatal("refused")
		}
	}
}
