package wire

import (
	"bytes"
	"iter"
	"net/http"
	"net/netip"
)

// The opening handshake's request, read strictly: the HTTP/1.1 message
// syntax of RFC 9112 (which obsoletes RFC 7230) and the request RFC 6455
// §4.2.1 describes. What the RFCs let a server either refuse or repair
// (bare LF line ends, obsolete line folding, CR or NUL in a value) is
// refused: an upgrade request comes from a WebSocket client library or a
// browser, which never send them, and every repair is a way for two
// parsers on the path (a proxy and this one) to read the same bytes
// differently.

// RequestError is an upgrade request refused with an HTTP status: Status
// is the code, Reason the response's body, Header extra response header
// lines (each ending in CRLF).
type RequestError struct {
	Status int
	Reason string
	Header string
}

func (e *RequestError) Error() string { return "ws: upgrade refused: " + e.Reason }

func badRequest(reason string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Reason: reason}
}

// Request syntax failures, prebuilt so that refusing a request does not
// allocate.
var (
	ErrBareLF         = badRequest("bare LF: lines must end in CRLF")
	ErrBareCR         = badRequest("CR not followed by LF")
	ErrRequestLine    = badRequest("malformed request line")
	ErrVersionSyntax  = badRequest("malformed HTTP version")
	ErrNoSuchVersion  = badRequest("no such HTTP version")
	ErrVersion        = &RequestError{Status: http.StatusHTTPVersionNotSupported, Reason: "WebSocket upgrades need HTTP/1.1"}
	ErrMethod         = &RequestError{Status: http.StatusMethodNotAllowed, Reason: "method must be GET", Header: "Allow: GET\r\n"}
	ErrTarget         = badRequest("request target must be an absolute path or an http(s)/ws(s) URI, without a fragment")
	ErrFolding        = badRequest("obsolete line folding in a header field")
	ErrFieldName      = badRequest("invalid character in a header field name")
	ErrSpaceColon     = badRequest("whitespace between a header field name and its colon")
	ErrNoColon        = badRequest("header line without a colon")
	ErrFieldValue     = badRequest("control character (NUL, CR, ...) in a header field value")
	ErrTooManyFields  = &RequestError{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "too many header fields"}
	ErrNoHost         = badRequest("missing Host header field")
	ErrHost           = badRequest("invalid Host: want host[:port]")
	ErrDupHost        = badRequest("more than one Host header field")
	ErrDupKey         = badRequest("more than one Sec-WebSocket-Key header field")
	ErrDupVersion     = badRequest("more than one Sec-WebSocket-Version header field")
	ErrDupOrigin      = badRequest("more than one Origin header field")
	ErrBody           = badRequest("an upgrade request has no body (Content-Length or Transfer-Encoding)")
	ErrHeadIncomplete = badRequest("request head does not end with an empty line")
)

// MaxFields is the most header fields a request may have (431 past it):
// browsers send about twenty.
const MaxFields = 100

// Field is one header field: Name as sent, Value without the whitespace
// around it. Both point into the request's bytes.
type Field struct {
	Name, Value []byte
}

// Request is a parsed upgrade request. Its slices point into the bytes
// given to ParseRequest and are valid as long as those are (for package
// ws: until the handshake returns).
type Request struct {
	Method []byte
	Target []byte
	// The single-valued fields the handshake reads, nil when absent:
	// ParseRequest refuses a request that repeats one (RFC 9112 §3.2 for
	// Host, RFC 6455 §11.3.1 and §11.3.5 for the key and the version, RFC
	// 6454 §7 for Origin), so that no two readers of the request can pick
	// different ones.
	Host, Key, Version, Origin []byte

	fields [MaxFields]Field // in place: parsing a request allocates nothing
	n      int
}

// Fields returns all the header fields, in order.
func (r *Request) Fields() []Field { return r.fields[:r.n] }

// Values yields the value of every field named name (case-insensitive),
// in order: several fields of one name are one comma-separated list (RFC
// 9110 §5.3), as Sec-WebSocket-Extensions and Sec-WebSocket-Protocol may
// be sent.
func (r *Request) Values(name string) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for _, f := range r.Fields() {
			if equalFold(f.Name, name) && !yield(f.Value) {
				return
			}
		}
	}
}

// HasToken reports whether the comma-separated lists in the fields named
// name hold token (both compared case-insensitively), as RFC 6455 §4.2.1
// asks of Upgrade ("websocket") and Connection ("Upgrade").
func (r *Request) HasToken(name, token string) bool {
	for _, f := range r.Fields() {
		if !equalFold(f.Name, name) {
			continue
		}
		for v := f.Value; len(v) > 0; {
			item := v
			if i := bytes.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				v = nil
			}
			if equalFold(trimOWS(item), token) {
				return true
			}
		}
	}
	return false
}

// HeadScanner finds the end of a request head while its bytes arrive, and
// refuses a broken one at the first bad line instead of waiting for the
// rest (or for the handshake timeout): a bare LF or CR, a bad request
// line, a bad field line. It remembers only how far the bytes were found
// clean (2 bytes, in a connection's padding): each complete line is
// checked once, and the partial line a read ends in is looked over again
// at the next read. The zero value is ready.
type HeadScanner struct {
	n uint16 // bytes found clean; capped, as resuming earlier is only slower
}

// Scan looks at b, the head's bytes so far: the same start on every call,
// more bytes each time. It returns the head's length through its empty
// line once b holds it, 0 while it does not, or the error that refuses the
// request: the first one in b, however b was cut into reads.
func (s *HeadScanner) Scan(b []byte) (int, error) {
	from := min(int(s.n), len(b))
	line := bytes.LastIndexByte(b[:from], '\n') + 1 // start of the line being scanned
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			// A CR with a byte after it in the partial line is bare; a CR
			// at the very end waits for its LF.
			if j := bytes.IndexByte(b[line:], '\r'); j >= 0 && line+j+1 < len(b) {
				return 0, ErrBareCR
			}
			s.n = uint16(min(len(b), 1<<16-1))
			return 0, nil
		}
		lf := from + i
		l, err := checkLine(b[line:lf], line == 0)
		if err != nil {
			return 0, err
		}
		if len(l) == 0 && line > 0 {
			s.n = uint16(min(lf+1, 1<<16-1))
			return lf + 1, nil
		}
		line, from = lf+1, lf+1
	}
}

// checkLine checks one line of a head, given without its LF: it must end
// in its only CR, and be a good request line (first) or field line (the
// others, or empty: the end of the head). It returns the line without its
// CR.
func checkLine(l []byte, first bool) ([]byte, error) {
	l, err := lineEnd(l)
	switch {
	case err != nil:
	case first:
		_, _, err = parseRequestLine(l)
	case len(l) > 0:
		_, _, err = parseField(l)
	}
	return l, err
}

// lineEnd checks that a line, given without its LF, ends in its only CR,
// and cuts the CR.
func lineEnd(l []byte) ([]byte, error) {
	switch cr := bytes.IndexByte(l, '\r'); {
	case cr >= 0 && cr < len(l)-1:
		return nil, ErrBareCR
	case cr < 0:
		return nil, ErrBareLF
	}
	return l[:len(l)-1], nil
}

// ParseRequest parses a whole request head (through its empty line, as
// HeadScanner.Scan delimits it) into r. It checks the HTTP syntax, the
// request line (GET, an origin-form or absolute target, HTTP/1.1), the
// Host and the fields that may appear once; the handshake checks the
// WebSocket fields.
func ParseRequest(head []byte, r *Request) error {
	// Reset all but the fields' array: the entries past n are never read.
	r.Method, r.Target, r.Host, r.Key, r.Version, r.Origin, r.n = nil, nil, nil, nil, nil, nil, 0
	for off, first := 0, true; ; first = false {
		lf := bytes.IndexByte(head[off:], '\n')
		if lf < 0 {
			return ErrHeadIncomplete
		}
		l, err := lineEnd(head[off : off+lf])
		if err != nil {
			return err
		}
		off += lf + 1
		switch {
		case first:
			if r.Method, r.Target, err = parseRequestLine(l); err != nil {
				return err
			}
			continue
		case len(l) > 0:
			name, value, err := parseField(l)
			if err == nil {
				err = r.add(name, value)
			}
			if err != nil {
				return err
			}
			continue
		case off != len(head):
			return ErrHeadIncomplete
		}
		break
	}
	// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host, a valid
	// host[:port] (and a WebSocket request names the server in it, RFC
	// 6455 §4.2.1 item 2).
	switch {
	case r.Host == nil:
		return ErrNoHost
	case !validAuthority(r.Host):
		return ErrHost
	}
	return nil
}

// add records one field, and the singletons the handshake reads.
func (r *Request) add(name, value []byte) error {
	if r.n == MaxFields {
		return ErrTooManyFields
	}
	r.fields[r.n] = Field{name, value}
	r.n++
	var dst *[]byte
	var dup *RequestError
	switch {
	case equalFold(name, "Host"):
		dst, dup = &r.Host, ErrDupHost
	case equalFold(name, "Sec-WebSocket-Key"):
		dst, dup = &r.Key, ErrDupKey
	case equalFold(name, "Sec-WebSocket-Version"):
		dst, dup = &r.Version, ErrDupVersion
	case equalFold(name, "Origin"):
		dst, dup = &r.Origin, ErrDupOrigin
	case equalFold(name, "Content-Length"):
		if string(value) != "0" {
			return ErrBody
		}
		return nil
	case equalFold(name, "Transfer-Encoding"):
		return ErrBody
	default:
		return nil
	}
	if *dst != nil {
		return dup
	}
	*dst = value // non-nil even when empty (parseField)
	return nil
}

// parseRequestLine checks a request line (RFC 9112 §3: method SP
// request-target SP HTTP-version, single spaces) for an upgrade: the
// version first (HTTP/1.1; 505 for the versions that exist and cannot
// upgrade, 400 for those that do not exist), then the method (GET, 405),
// then the target (RFC 6455 §3 and §4.1: an absolute path or an absolute
// http, https, ws or wss URI, without a fragment; "*" is not one).
func parseRequestLine(line []byte) (method, target []byte, err error) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, nil, ErrRequestLine
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return nil, nil, ErrRequestLine
	}
	method, target, version := line[:sp1], line[sp1+1:sp1+1+sp2], line[sp1+2+sp2:]
	if !isToken(method) {
		return nil, nil, ErrRequestLine
	}
	if err := checkVersion(version); err != nil {
		return nil, nil, err
	}
	if string(method) != "GET" {
		return nil, nil, ErrMethod
	}
	if !validTarget(target) {
		return nil, nil, ErrTarget
	}
	return method, target, nil
}

// checkVersion accepts HTTP/1.1 (RFC 9112 §2.3: "HTTP/" DIGIT "." DIGIT,
// case-sensitive).
func checkVersion(v []byte) error {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return ErrVersionSyntax
	}
	switch string(v[5:]) {
	case "1.1":
		return nil
	case "0.9", "1.0", "2.0", "3.0":
		return ErrVersion
	}
	return ErrNoSuchVersion
}

// validTarget accepts an origin-form target ("/path?query") or an
// absolute one with a WebSocket or HTTP scheme and a host (RFC 6455 §3 and
// §4.2.1 item 1, RFC 9112 §3.2), made of the characters RFC 3986 allows,
// percent escapes well formed, without a fragment (RFC 6455 §3).
func validTarget(t []byte) bool {
	if len(t) > 0 && t[0] == '/' {
		return validPathQuery(t)
	}
	for _, scheme := range [...]string{"http://", "https://", "ws://", "wss://"} {
		if len(t) > len(scheme) && equalFold(t[:len(scheme)], scheme) {
			rest := t[len(scheme):]
			end := len(rest)
			if i := bytes.IndexAny(rest, "/?"); i >= 0 {
				end = i
			}
			return validAuthority(rest[:end]) && validPathQuery(rest[end:])
		}
	}
	return false
}

// validPathQuery checks path and query characters (RFC 3986 §3.3, §3.4).
func validPathQuery(t []byte) bool {
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		case !uriChar[c]:
			return false
		}
	}
	return true
}

// validAuthority accepts host[:port] with a host name or address of
// unreserved characters, or a bracketed IPv6 address (without a zone): no
// userinfo (RFC 9110 §4.2.4 tells a recipient to treat it as an error), no
// percent escapes, a port of digits.
func validAuthority(a []byte) bool {
	host, port := a, []byte(nil)
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		if ip, err := netip.ParseAddr(string(a[1:end])); err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
		host, port = nil, a[end+1:]
		if len(port) > 0 && port[0] != ':' {
			return false
		}
	} else if i := bytes.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i:]
	}
	if host != nil && len(host) == 0 {
		return false
	}
	for _, c := range host {
		if !isDigit(c) && !('a' <= c|0x20 && c|0x20 <= 'z') && c != '-' && c != '.' && c != '_' && c != '~' {
			return false
		}
	}
	if len(port) > 0 {
		if len(port) == 1 || len(port) > 6 {
			return false
		}
		for _, c := range port[1:] {
			if !isDigit(c) {
				return false
			}
		}
	}
	return len(a) > 0
}

// parseField splits a header line (RFC 9112 §5: field-name ":" OWS
// field-value OWS) and checks it: the name a token with no whitespace
// before the colon (§5.1: a server must refuse that with 400), no obsolete
// folding (§5.2), a value of visible characters, spaces and tabs only
// (RFC 9110 §5.5: CR, LF and NUL are refused, and so are the other
// controls).
func parseField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, ErrFolding
	}
	colon := bytes.IndexByte(line, ':')
	switch {
	case colon < 0:
		return nil, nil, ErrNoColon
	case colon == 0:
		return nil, nil, ErrFieldName
	}
	name = line[:colon]
	if c := name[len(name)-1]; c == ' ' || c == '\t' {
		return nil, nil, ErrSpaceColon
	}
	if !isToken(name) {
		return nil, nil, ErrFieldName
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if !valueByte[c] {
			return nil, nil, ErrFieldValue
		}
	}
	return name, value, nil
}

// valueByte holds the bytes a field value may hold: visible characters,
// space, tab and obs-text (0x80-0xff).
var valueByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= ' ' && c != 0x7f || c == '\t'
	}
	return t
}()

// trimOWS cuts the spaces and tabs around b (RFC 9110 §5.6.3). Unlike
// bytes.Trim it returns a non-nil slice for a non-nil b, so that an empty
// value still counts as present.
func trimOWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t') {
		j--
	}
	return b[i:j:j]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether b is a non-empty token (RFC 9110 §5.6.2).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// uriChar holds the characters of a path or query but '%' (RFC 3986 §3.3,
// §3.4: unreserved, sub-delims, ":@/?"); '#' is left out: a WebSocket URI
// has no fragment (RFC 6455 §3).
var uriChar = alnumAnd("-._~!$&'()*+,;=:@/?")

// tchar holds the characters of a token (RFC 9110 §5.6.2).
var tchar = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is a byte class of the ASCII letters and digits and extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := range t {
		t[c] = isDigit(byte(c)) || 'a' <= c|0x20 && c|0x20 <= 'z'
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
}

// equalFold is ASCII case-insensitive equality of b and s, without
// converting either.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
