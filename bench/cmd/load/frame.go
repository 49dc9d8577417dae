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
type message struct {
	op   byte
	base []byte // the payload, stamp bytes aside
	key  [4]byte
	tail []byte // base[stampWidth:] masked with key
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
	w := stampWidth(size) // 16 or the whole payload: the tail starts at a key boundary
	m.tail = make([]byte, size-w)
	for i := range m.tail {
		m.tail[i] = m.base[w+i] ^ m.key[(w+i)&3]
	}
	return m
}

// clientFrame is one connection's frame header and masked stamp, rewritten in
// place for each send; message.tail follows it on the wire.
type clientFrame struct {
	m      *message
	id     uint64
	prefix []byte // header, mask key, masked stamp
	payOff int
}

// newClientFrame builds connection id's frame prefix for m.
func newClientFrame(m *message, id uint64) *clientFrame {
	n := len(m.base)
	hdr := make([]byte, 0, 14+16)
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
	hdr = append(hdr, m.key[:]...)
	f := &clientFrame{m: m, id: id, payOff: len(hdr)}
	f.prefix = append(hdr, make([]byte, stampWidth(n))...)
	return f
}

// set rewrites the stamp for seq and returns the frame's prefix; the frame is
// the prefix followed by f.m.tail.
func (f *clientFrame) set(seq uint64) []byte {
	var st [16]byte
	w := len(f.prefix) - f.payOff
	putStamp(st[:w], f.id, seq)
	p := f.prefix[f.payOff:]
	for i := range w {
		p[i] = st[i] ^ f.m.key[i&3]
	}
	return f.prefix
}

// equalAt reports whether chunk equals the payload of message seq at payload
// offset off. It lets a reader verify an echo piece by piece as bytes arrive.
func (f *clientFrame) equalAt(seq uint64, off int, chunk []byte) bool {
	base := f.m.base
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
	return bytes.Equal(chunk, base[off:off+len(chunk)])
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
