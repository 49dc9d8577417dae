package deflate

import (
	"iter"
	"strconv"
)

// ExtensionName is the extension's token (RFC 7692 §7).
const ExtensionName = "permessage-deflate"

// Window bits (RFC 7692 §7.1.2): the base-2 logarithm of an LZ77 sliding
// window, 8 (256 bytes) to 15 (32 KiB).
const (
	MinWindowBits = 8
	MaxWindowBits = 15
)

// Params are what a connection agreed on: the response's parameters, with
// the defaults of the ones it left out filled in.
type Params struct {
	// ServerNoContextTakeover: every server message is compressed without
	// reference to earlier ones (the client resets its inflater per
	// message).
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: every client message is compressed on its
	// own, so the server keeps no history between them.
	ClientNoContextTakeover bool
	// ServerWindowBits bounds the distances in the server's messages.
	ServerWindowBits uint8
	// ClientWindowBits bounds the distances in the client's messages: the
	// history the server keeps when ClientNoContextTakeover is false.
	ClientWindowBits uint8
}

// Policy is what a server accepts and asks for.
type Policy struct {
	// ServerContextTakeover lets the server compress a message with
	// reference to the ones it sent before, unless the client forbids it
	// (server_no_context_takeover in its offer).
	ServerContextTakeover bool
	// ClientContextTakeover lets the client do the same for its messages,
	// which costs the server a window of 2^ClientWindowBits bytes per
	// connection; false answers every offer with client_no_context_takeover.
	ClientContextTakeover bool
	// ServerWindowBits is the largest window the server compresses with
	// (8..15); a client may ask for less.
	ServerWindowBits int
	// ClientWindowBits is the largest window the server accepts from a
	// client that keeps context (8..15). A client that does not let the
	// server choose (no client_max_window_bits in its offer) is asked for
	// client_no_context_takeover when this is below 15.
	ClientWindowBits int
}

// offer is one permessage-deflate offer, parsed.
type offer struct {
	serverNoContext bool
	clientNoContext bool
	serverBits      int  // 0: not in the offer
	clientBits      int  // 0: not in the offer; -1: present without a value
	bad             bool // an unknown, duplicated or invalid parameter
}

// Negotiate picks the first acceptable permessage-deflate offer in the
// Sec-WebSocket-Extensions field values of a request (RFC 7692 §5, §7.1),
// in order: the offers of the first field, then of the next. An offer with
// an unknown or duplicated parameter, an invalid value, or a syntax error
// is declined and the next one tried; offers of other extensions are
// ignored. It returns the agreed parameters and dst with the field value
// that states them appended (ExtensionName and exactly the parameters the
// server answers with, in a fixed order), or ok=false and dst unchanged
// when no offer is acceptable. It allocates nothing but dst's growth.
func Negotiate(dst []byte, values iter.Seq[[]byte], pol Policy) (p Params, response []byte, ok bool) {
	for v := range values {
		s := scanner{b: v}
		for !s.done() {
			name, o, ok := s.element()
			if !ok || !equalFold(name, ExtensionName) || o.bad {
				continue
			}
			p, sayClientBits := accept(o, pol)
			return p, appendResponse(dst, p, o, sayClientBits), true
		}
	}
	return Params{}, dst, false
}

// accept decides the parameters for an offer that parsed, and whether the
// response must state the client's window bits (RFC 7692 §7.1).
func accept(o offer, pol Policy) (p Params, sayClientBits bool) {
	p = Params{
		ServerNoContextTakeover: o.serverNoContext || !pol.ServerContextTakeover,
		ClientNoContextTakeover: o.clientNoContext || !pol.ClientContextTakeover,
		ServerWindowBits:        uint8(pol.ServerWindowBits),
		ClientWindowBits:        MaxWindowBits,
	}
	if o.serverBits > 0 && o.serverBits < pol.ServerWindowBits {
		p.ServerWindowBits = uint8(o.serverBits)
	}
	if o.clientBits > 0 {
		// §7.1.2.2: the client will not use more; the server may rely on it.
		p.ClientWindowBits = uint8(o.clientBits)
	}
	switch {
	case p.ClientNoContextTakeover:
		// No history is kept: the client's window costs nothing.
	case o.clientBits == 0:
		// The client did not let the server bound its window: only a
		// client without context keeps within the policy's bound.
		p.ClientNoContextTakeover = pol.ClientWindowBits < MaxWindowBits
	case pol.ClientWindowBits < int(p.ClientWindowBits):
		p.ClientWindowBits = uint8(pol.ClientWindowBits)
		sayClientBits = true
	}
	return p, sayClientBits
}

// appendResponse writes the response's value: the extension, then each
// parameter the response must or chooses to carry (RFC 7692 §7.1).
func appendResponse(b []byte, p Params, o offer, sayClientBits bool) []byte {
	b = append(b, ExtensionName...)
	if p.ServerNoContextTakeover {
		b = append(b, "; server_no_context_takeover"...)
	}
	if p.ClientNoContextTakeover {
		b = append(b, "; client_no_context_takeover"...)
	}
	// §7.1.2.1: an offer's server_max_window_bits must be answered; without
	// one, the server may still announce a smaller window.
	if o.serverBits > 0 || p.ServerWindowBits < MaxWindowBits {
		b = append(b, "; server_max_window_bits="...)
		b = strconv.AppendInt(b, int64(p.ServerWindowBits), 10)
	}
	if sayClientBits {
		b = append(b, "; client_max_window_bits="...)
		b = strconv.AppendInt(b, int64(p.ClientWindowBits), 10)
	}
	return b
}

// Passthrough reports whether a client message, as it arrived, is also a
// valid server message: it was compressed on its own (no client context)
// within a window the server may use. A zlib-based client cannot compress
// with a 256-byte window and uses 512 bytes when it agreed to 8 bits, so 8
// counts as 9 here.
func (p Params) Passthrough() bool {
	return p.ClientNoContextTakeover && max(p.ClientWindowBits, 9) <= p.ServerWindowBits
}

// scanner walks a Sec-WebSocket-Extensions value: a comma-separated list
// (RFC 7230 §7: empty elements are allowed and ignored) of extensions with
// parameters (RFC 6455 §9.1):
//
//	extension = token *( ";" extension-param )
//	extension-param = token [ "=" ( token / quoted-string ) ]
//
// with optional whitespace around the separators.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) done() bool {
	s.ows()
	for s.i < len(s.b) && s.b[s.i] == ',' {
		s.i++
		s.ows()
	}
	return s.i >= len(s.b)
}

// element parses the extension at the scanner's position and moves past it
// and its comma. ok=false means a syntax error: the scanner has skipped to
// the next comma outside a quoted string.
func (s *scanner) element() (name []byte, o offer, ok bool) {
	name = s.token()
	if name == nil {
		s.skip()
		return nil, o, false
	}
	for {
		s.ows()
		if s.i == len(s.b) {
			return name, o, true
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			return name, o, true
		case ';':
			s.i++
		default:
			s.skip()
			return name, o, false
		}
		s.ows()
		key := s.token()
		if key == nil {
			s.skip()
			return name, o, false
		}
		s.ows()
		var val []byte
		hasVal := false
		if s.i < len(s.b) && s.b[s.i] == '=' {
			s.i++
			s.ows()
			if val, ok = s.value(); !ok {
				s.skip()
				return name, o, false
			}
			hasVal = true
		}
		o.param(key, val, hasVal)
	}
}

// param records one parameter of a permessage-deflate offer (RFC 7692
// §7.1), marking the offer bad on anything the RFC does not allow.
func (o *offer) param(key, val []byte, hasVal bool) {
	switch {
	case equalFold(key, "server_no_context_takeover"):
		o.bad = o.bad || hasVal || o.serverNoContext
		o.serverNoContext = true
	case equalFold(key, "client_no_context_takeover"):
		o.bad = o.bad || hasVal || o.clientNoContext
		o.clientNoContext = true
	case equalFold(key, "server_max_window_bits"):
		bits, valid := windowBits(val)
		o.bad = o.bad || !hasVal || !valid || o.serverBits != 0
		o.serverBits = bits
	case equalFold(key, "client_max_window_bits"):
		bits := -1
		if hasVal {
			var valid bool
			bits, valid = windowBits(val)
			o.bad = o.bad || !valid
		}
		o.bad = o.bad || o.clientBits != 0
		o.clientBits = bits
	default:
		o.bad = true
	}
}

// windowBits parses a window-bits value: a decimal 8..15 without leading
// zeros (RFC 7692 §7.1.2.1).
func windowBits(v []byte) (int, bool) {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return int(v[0] - '0'), true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + int(v[1]-'0'), true
	}
	return 0, false
}

// value reads a parameter value: a token, or a quoted string whose content
// (quoted pairs unescaped) must itself be a token (RFC 6455 §9.1). An
// escaped value is returned in a new slice.
func (s *scanner) value() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		v := s.token()
		return v, v != nil
	}
	s.i++
	start := s.i
	var unescaped []byte
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			if unescaped != nil {
				v = unescaped
			}
			s.i++
			return v, len(v) > 0 && isToken(v)
		case c == '\\':
			if s.i+1 == len(s.b) {
				return nil, false
			}
			if unescaped == nil {
				unescaped = append([]byte{}, s.b[start:s.i]...)
			}
			unescaped = append(unescaped, s.b[s.i+1])
			s.i += 2
			continue
		case c < 0x20 && c != '\t' || c == 0x7f:
			return nil, false
		}
		if unescaped != nil {
			unescaped = append(unescaped, c)
		}
		s.i++
	}
	return nil, false // unterminated
}

// token reads a token (RFC 7230 §3.2.6); nil if there is none here.
func (s *scanner) token() []byte {
	start := s.i
	for s.i < len(s.b) && isTchar(s.b[s.i]) {
		s.i++
	}
	if s.i == start {
		return nil
	}
	return s.b[start:s.i]
}

// ows skips optional whitespace.
func (s *scanner) ows() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t') {
		s.i++
	}
}

// skip moves past the next comma outside a quoted string (or to the end):
// the rest of an element that did not parse.
func (s *scanner) skip() {
	quoted := false
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case quoted && c == '\\':
			s.i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			s.i++
			return
		}
	}
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// isTchar: RFC 7230 §3.2.6 tchar.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFold compares an ASCII token with a lower-case name, ignoring case
// (HTTP tokens are case-insensitive).
func equalFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
