package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate (RFC 7692) on the generator's side. It offers what
// -deflate says, sends every message compressed without context (which any
// agreement allows), and verifies each echo: an echo that is byte for byte
// what was sent needs no inflating (it inflates to the message whatever the
// history); any other is inflated, with the server's history when the
// server kept context, and compared with the message. The deflate is
// klauspost/compress's (a dependency of gws already): it inflates about
// twice as fast as compress/flate, and the generator is one core. The
// tests check the generator's output with compress/flate.

// deflateParams are the parameters the server's response agreed to.
type deflateParams struct {
	serverNoContext bool
	clientNoContext bool
	serverBits      int // 0: not stated (15)
}

// parseDeflateResponse reads a Sec-WebSocket-Extensions response value.
func parseDeflateResponse(v string) (*deflateParams, error) {
	parts := strings.Split(v, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" {
		return nil, fmt.Errorf("load: server answered extension %q", v)
	}
	p := &deflateParams{}
	for _, part := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "server_no_context_takeover":
			p.serverNoContext = true
		case "client_no_context_takeover":
			p.clientNoContext = true
		case "server_max_window_bits":
			n, err := strconv.Atoi(strings.Trim(val, `"`))
			if err != nil || n < 8 || n > 15 {
				return nil, fmt.Errorf("load: server_max_window_bits %q", val)
			}
			p.serverBits = n
		case "client_max_window_bits":
		default:
			return nil, fmt.Errorf("load: unknown permessage-deflate parameter %q in %q", k, v)
		}
	}
	return p, nil
}

// jsonText is n bytes of JSON-like text from seed: a feed of quotes with
// varying values, as market data or chat look to a compressor.
func jsonText(n int, seed uint64) []byte {
	var b []byte
	x := 0x9E3779B97F4A7C15 ^ seed*0xBF58476D1CE4E5B9
	next := func(m uint64) uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x % m
	}
	for len(b) < n {
		b = fmt.Appendf(b, `{"sym":"S%03d","px":%d.%02d,"qty":%d,"side":"%s","ts":%d}`+"\n",
			next(400), 10+next(5000), next(100), next(100000), [2]string{"buy", "sell"}[next(2)], 1_700_000_000_000+next(1e9))
	}
	return b[:n]
}

// compressedVariants is how many different compressed messages a
// connection sends in turn: a history window of 32 KiB holds fewer than that
// many of even the smallest (1 KiB), so that a server keeping context finds
// the feed's common structure in it, not the same message again.
const compressedVariants = 64

// newCompressedMessages returns compressedVariants text messages of size
// bytes of JSON-like text, each with its deflate data.
func newCompressedMessages(size int) []*message {
	ms := make([]*message, compressedVariants)
	for i := range ms {
		ms[i] = newCompressedMessage(size, uint64(i))
	}
	return ms
}

// newCompressedMessage returns a text message of size bytes of JSON-like
// text from seed and its deflate data: a stored block holding the stamp
// (its length in two little-endian bytes, then their complement: RFC 1951
// §3.2.4), then the rest of the message compressed once, its sync-flush
// tail removed (RFC 7692 §7.2.1).
func newCompressedMessage(size int, seed uint64) *message {
	m := &message{op: opText, rsv1: true, plain: jsonText(size, seed), key: [4]byte{0x5a, 0xc3, 0x91, 0x27}}
	w := stampWidth(size)
	var body bytes.Buffer
	fw, _ := flate.NewWriter(&body, flate.BestSpeed)
	fw.Write(m.plain[w:])
	fw.Flush()
	data := bytes.TrimSuffix(body.Bytes(), []byte{0, 0, 0xff, 0xff})
	m.base = append([]byte{0x00, byte(w), 0, ^byte(w), 0xff}, make([]byte, w)...)
	m.base = append(m.base, data...)
	m.stampOff = 5
	m.maskTail()
	return m
}

// inflater verifies one connection's compressed echoes.
type inflater struct {
	p    *deflateParams
	r    io.ReadCloser
	in   bytes.Reader
	msg  []byte // the compressed echo being gathered from its frames
	out  []byte
	hist []byte // the server's messages, last 32 KiB (server context takeover)
}

var errInflate = errors.New("load: compressed echo does not inflate")

// tail is RFC 7692 §7.2.2's 00 00 ff ff, and an empty final block so the
// inflater ends with io.EOF.
var tail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// verify checks the gathered compressed echo of message seq.
func (z *inflater) verify(f *clientFrame, seq uint64) error {
	defer func() { z.msg = z.msg[:0] }()
	if !f.equalWire(seq, z.msg) {
		z.msg = append(z.msg, tail...)
		z.in.Reset(z.msg)
		var dict []byte
		if !z.p.serverNoContext {
			dict = z.hist
		}
		if z.r == nil {
			z.r = flate.NewReaderDict(&z.in, dict)
		} else {
			z.r.(flate.Resetter).Reset(&z.in, dict)
		}
		z.out = z.out[:0]
		for {
			if len(z.out) == cap(z.out) {
				z.out = append(z.out, 0)[:len(z.out)]
			}
			n, err := z.r.Read(z.out[len(z.out):cap(z.out)])
			z.out = z.out[:len(z.out)+n]
			if err == io.EOF {
				break
			}
			if err != nil || len(z.out) > len(f.msg(seq).plain) {
				return fmt.Errorf("%w: message %d: %v", errInflate, seq, err)
			}
		}
		if len(z.out) != len(f.msg(seq).plain) || !f.equalAt(seq, 0, z.out) {
			return fmt.Errorf("%w: message %d inflates to other bytes", errMismatch, seq)
		}
	}
	if !z.p.serverNoContext {
		z.remember(f, seq)
	}
	return nil
}

// remember appends message seq to the server's history.
func (z *inflater) remember(f *clientFrame, seq uint64) {
	const window = 32 << 10
	p := f.msg(seq).plain
	w := stampWidth(len(p))
	if len(z.hist)+len(p) > 2*window {
		z.hist = append(z.hist[:0], z.hist[max(0, len(z.hist)-window):]...)
	}
	at := len(z.hist)
	z.hist = append(z.hist, p...)
	putStamp(z.hist[at:at+w], f.id, seq)
}

// primeSize is the message an idle connection echoes once: larger than the
// largest history window (32 KiB), so that a server keeping its client's
// history holds all of it, as it would after a while in use.
const primeSize = 40 << 10

// primeIdle sends one compressed message on a new idle connection and
// verifies its echo, so that the server holds whatever a connection that
// has used compression holds.
func primeIdle(c net.Conn, br *bufio.Reader, p *deflateParams, id uint64) error {
	m := newCompressedMessage(primeSize, id)
	f := newClientFrame([]*message{m}, id)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	prefix, tail := f.set(0)
	if _, err := c.Write(append(append([]byte{}, prefix...), tail...)); err != nil {
		return err
	}
	z := &inflater{p: p}
	for {
		b, err := br.Peek(2)
		if err != nil {
			return err
		}
		h, ok, err := parseHeader(b, true)
		for err == nil && !ok {
			b, err = br.Peek(len(b) + 2)
			if err == nil {
				h, ok, err = parseHeader(b, true)
			}
		}
		if err != nil {
			return err
		}
		br.Discard(h.size)
		p := make([]byte, h.length)
		if _, err := io.ReadFull(br, p); err != nil {
			return err
		}
		switch {
		case h.op >= opClose:
			return fmt.Errorf("load: idle connection got control frame %d", h.op)
		case !h.rsv1 && h.op != opContinuation:
			if h.fin && f.equalAt(0, 0, p) && len(p) == len(m.plain) {
				return nil // the server answered uncompressed
			}
			return fmt.Errorf("%w: idle connection's echo", errMismatch)
		}
		z.msg = append(z.msg, p...)
		if h.fin {
			return z.verify(f, 0)
		}
	}
}
