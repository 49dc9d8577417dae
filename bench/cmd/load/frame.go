package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// WebSocket opcodes used by the generator (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// errMismatch reports an echo whose bytes differ from what was sent.
var errMismatch = errors.New("load: echo differs from the message sent")

// stampWidth is how many leading payload bytes carry the message's sequence
// number, written as hex digits so that text messages stay valid UTF-8.
func stampWidth(size int) int { return min(size, 16) }

// putStamp writes seq as w hex digits into dst (the low digits when w < 16).
func putStamp(dst []byte, seq uint64) {
	const hex = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hex[seq&0xf]
		seq >>= 4
	}
}

// message describes the payload a connection sends: base holds the pattern,
// whose first stampWidth bytes are replaced by the sequence number of each send.
type message struct {
	op   byte
	base []byte
}

// newMessage returns a printable-ASCII pattern of size bytes derived from seed,
// so that each connection sends different bytes and text frames are valid UTF-8.
func newMessage(size int, text bool, seed uint64) *message {
	m := &message{op: opBinary, base: make([]byte, size)}
	if text {
		m.op = opText
	}
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range m.base {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		m.base[i] = 'A' + byte(x%58) // 'A'..'z', all ASCII
	}
	return m
}

// equalAt reports whether chunk equals the payload of message seq at payload
// offset off. It lets a reader verify an echo piece by piece as bytes arrive.
func (m *message) equalAt(seq uint64, off int, chunk []byte) bool {
	w := stampWidth(len(m.base))
	if off < w {
		var st [16]byte
		putStamp(st[:w], seq)
		n := min(w-off, len(chunk))
		if !bytes.Equal(chunk[:n], st[off:off+n]) {
			return false
		}
		chunk = chunk[n:]
		off += n
	}
	return bytes.Equal(chunk, m.base[off:off+len(chunk)])
}

// clientFrame is one masked client frame that is rewritten in place for each
// send: only the stamp bytes change, so sending costs no masking of the payload.
type clientFrame struct {
	buf    []byte
	payOff int
	key    [4]byte
	width  int
}

// newClientFrame builds the masked frame for m with mask key derived from seed.
func newClientFrame(m *message, seed uint32) *clientFrame {
	n := len(m.base)
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|m.op)
	switch {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	f := &clientFrame{payOff: len(hdr) + 4, width: stampWidth(n)}
	binary.BigEndian.PutUint32(f.key[:], seed|1)
	hdr = append(hdr, f.key[:]...)
	f.buf = append(hdr, m.base...)
	for i := range n {
		f.buf[f.payOff+i] ^= f.key[i&3]
	}
	return f
}

// set rewrites the frame's stamp for seq and returns the whole frame.
func (f *clientFrame) set(seq uint64) []byte {
	var st [16]byte
	putStamp(st[:f.width], seq)
	p := f.buf[f.payOff:]
	for i := range f.width {
		p[i] = st[i] ^ f.key[i&3]
	}
	return f.buf
}

// header is a parsed server frame header.
type header struct {
	fin    bool
	op     byte
	length int64
	size   int // bytes the header occupies
}

// parseHeader parses a server-to-client frame header from b. It returns ok=false
// when b does not hold the whole header yet, and an error for a header that a
// server must not send (masked, RSV bits, bad length).
func parseHeader(b []byte) (h header, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	if b[0]&0x70 != 0 {
		return h, false, fmt.Errorf("load: server frame has RSV bits 0x%02x", b[0])
	}
	if b[1]&0x80 != 0 {
		return h, false, errors.New("load: server frame is masked")
	}
	h.fin = b[0]&0x80 != 0
	h.op = b[0] & 0x0f
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		h.length, h.size = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, false, errors.New("load: server frame length has its top bit set")
		}
		h.length, h.size = int64(v), 10
	default:
		h.length, h.size = int64(l), 2
	}
	return h, true, nil
}
