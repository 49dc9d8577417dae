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

// stampWidth is how many leading payload bytes carry the message's stamp
// (connection id and sequence number), written as hex digits so that text
// messages stay valid UTF-8.
func stampWidth(size int) int { return min(size, 16) }

// seqBits is how many low bits of a stamp hold the sequence number; the bits
// above hold the connection's id, so an echo sent to the wrong connection is
// caught as well as a lost, repeated or reordered one.
const seqBits = 44

// putStamp writes the stamp of (id, seq) as len(dst) hex digits (the low
// digits when len(dst) < 16).
func putStamp(dst []byte, id, seq uint64) {
	const hex = "0123456789abcdef"
	v := id<<seqBits | seq&(1<<seqBits-1)
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hex[v&0xf]
		v >>= 4
	}
}

// message is the payload all connections send, and its masked tail: every
// connection uses the same mask key, so the bytes after the stamp are masked
// once and shared, and a send writes a few bytes of its own plus the tail.
//
// A compressed message (permessage-deflate, newCompressedMessage) goes on the
// wire as its deflate data: a stored block holding the stamp, then the rest
// of the message compressed once at start (deflate blocks concatenate, and
// data compressed on its own refers only to itself). Its plain form, which
// an echo must inflate to, has the stamp first like any other message.
type message struct {
	op       byte
	rsv1     bool   // compressed: RSV1 set on the frame (RFC 7692 §6)
	plain    []byte // the message, stamp bytes aside (the stamp is its first bytes)
	base     []byte // the payload on the wire, stamp bytes aside; plain unless compressed
	stampOff int    // where the stamp sits in base
	key      [4]byte
	tail     []byte // base after the stamp, masked with key
}

// newMessage returns a printable-ASCII pattern of size bytes, so that text
// frames are valid UTF-8, and its masked tail.
func newMessage(size int, text bool) *message {
	m := &message{op: opBinary, base: make([]byte, size), key: [4]byte{0x5a, 0xc3, 0x91, 0x27}}
	if text {
		m.op = opText
	}
	x := uint64(0x9E3779B97F4A7C15)
	for i := range m.base {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		m.base[i] = 'A' + byte(x%58) // 'A'..'z', all ASCII
	}
	m.plain = m.base
	m.maskTail()
	return m
}

// maskTail masks the bytes of base after the stamp.
func (m *message) maskTail() {
	from := m.stampOff + stampWidth(len(m.plain))
	m.tail = make([]byte, len(m.base)-from)
	for i := range m.tail {
		m.tail[i] = m.base[from+i] ^ m.key[(from+i)&3]
	}
}

// clientFrame is one connection's frames: for each message it sends (one,
// or a few variants that take turns by sequence number), the frame header
// and masked stamp, rewritten in place for each send, which the message's
// tail follows on the wire.
type clientFrame struct {
	ms     []*message
	id     uint64
	prefix [][]byte // per message: header, mask key, masked payload up to the stamp's end
	payOff []int
}

// newClientFrame builds connection id's frame prefixes for ms.
func newClientFrame(ms []*message, id uint64) *clientFrame {
	f := &clientFrame{ms: ms, id: id}
	for _, m := range ms {
		n := len(m.base)
		hdr := make([]byte, 0, 14+m.stampOff+16)
		b0 := 0x80 | m.op
		if m.rsv1 {
			b0 |= 0x40
		}
		hdr = append(hdr, b0)
		switch {
		case n < 126:
			hdr = append(hdr, 0x80|byte(n))
		case n <= 0xffff:
			hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
		default:
			hdr = append(hdr, 0x80|127)
			hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
		}
		hdr = append(hdr, m.key[:]...)
		f.payOff = append(f.payOff, len(hdr))
		f.prefix = append(f.prefix, append(hdr, m.base[:m.stampOff+stampWidth(len(m.plain))]...))
	}
	return f
}

// msg is the message that goes out as number seq.
func (f *clientFrame) msg(seq uint64) *message { return f.ms[seq%uint64(len(f.ms))] }

// set rewrites the stamp for seq and returns the frame: its prefix, then the
// message's masked tail.
func (f *clientFrame) set(seq uint64) (prefix, tail []byte) {
	i := seq % uint64(len(f.ms))
	m := f.ms[i]
	p := f.prefix[i][f.payOff[i]:]
	copy(p, m.base)
	putStamp(p[m.stampOff:], f.id, seq)
	for i := range p {
		p[i] ^= m.key[i&3]
	}
	return f.prefix[i], m.tail
}

// equalAt reports whether chunk equals the (plain) payload of message seq at
// offset off. It lets a reader verify an echo piece by piece as bytes arrive.
func (f *clientFrame) equalAt(seq uint64, off int, chunk []byte) bool {
	base := f.msg(seq).plain
	w := stampWidth(len(base))
	if off < w {
		var st [16]byte
		putStamp(st[:w], f.id, seq)
		n := min(w-off, len(chunk))
		if !bytes.Equal(chunk[:n], st[off:off+n]) {
			return false
		}
		chunk = chunk[n:]
		off += n
	}
	return off+len(chunk) <= len(base) && bytes.Equal(chunk, base[off:off+len(chunk)])
}

// equalWire reports whether p is exactly the payload message seq was sent
// with: an echo of a compressed message sent back as it arrived.
func (f *clientFrame) equalWire(seq uint64, p []byte) bool {
	m := f.msg(seq)
	w := stampWidth(len(m.plain))
	if len(p) != len(m.base) {
		return false
	}
	var st [16]byte
	putStamp(st[:w], f.id, seq)
	return bytes.Equal(p[:m.stampOff], m.base[:m.stampOff]) && bytes.Equal(p[m.stampOff:m.stampOff+w], st[:w]) &&
		bytes.Equal(p[m.stampOff+w:], m.base[m.stampOff+w:])
}

// header is a parsed server frame header.
type header struct {
	fin    bool
	rsv1   bool // compressed (permessage-deflate): only on a message's first frame
	op     byte
	length int64
	size   int // bytes the header occupies
}

// parseHeader parses a server-to-client frame header from b. It returns ok=false
// when b does not hold the whole header yet, and an error for a header that a
// server must not send (masked, RSV bits, bad length). RSV1 is allowed on a
// data frame that starts a message when deflate says permessage-deflate was
// negotiated (RFC 7692 §6.1).
func parseHeader(b []byte, deflate bool) (h header, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h.rsv1 = b[0]&0x40 != 0
	if op := b[0] & 0x0f; b[0]&0x30 != 0 || h.rsv1 && (!deflate || op == opContinuation || op >= opClose) {
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
