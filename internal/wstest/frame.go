package wstest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	gws "github.com/gobwas/ws"
)

// Frame is one WebSocket frame. As a client frame to put on the wire (Bytes)
// it has every field a test may want to get wrong; ReadFrame fills Fin, Rsv,
// Op and Payload of a frame the server sent.
type Frame struct {
	Fin     bool
	Rsv     byte // the 3 RSV bits, 0..7
	Op      gws.OpCode
	Payload []byte
	// LenBits forces a length encoding: 7, 16 or 64 bits. 0 is the
	// minimal one (RFC 6455 §5.2), which is all a server may send.
	LenBits int
	// Length is the declared payload length when RawLen is set, whatever
	// Payload holds: a header that promises more (or less) than follows.
	Length uint64
	RawLen bool
	// Unmasked leaves the frame unmasked, which RFC 6455 §5.1 forbids a
	// client.
	Unmasked bool
}

// Bytes encodes f, masked with a random key unless f.Unmasked. It panics
// on a LenBits other than 0, 7, 16 or 64: that is a mistake in the test.
func (f Frame) Bytes() []byte {
	b0 := byte(f.Op)&0x0f | (f.Rsv&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	n := uint64(len(f.Payload))
	if f.RawLen {
		n = f.Length
	}
	bits := f.LenBits
	if bits == 0 {
		bits = minLenBits(n)
	}
	var maskBit byte = 0x80
	if f.Unmasked {
		maskBit = 0
	}
	out := make([]byte, 0, 14+len(f.Payload))
	out = append(out, b0)
	switch bits {
	case 7:
		out = append(out, maskBit|byte(n))
	case 16:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	case 64:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, n)
	default:
		panic(fmt.Sprintf("wstest: Frame.LenBits %d: want 0, 7, 16 or 64", f.LenBits))
	}
	if f.Unmasked {
		return append(out, f.Payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	out = append(out, key[:]...)
	hs := len(out)
	out = append(out, f.Payload...)
	gws.Cipher(out[hs:], key, 0)
	return out
}

// minLenBits is the length encoding RFC 6455 §5.2 asks for n: 7 bits up to
// 125, 16 bits up to 65535, 64 bits above.
func minLenBits(n uint64) int {
	switch {
	case n < 126:
		return 7
	case n <= 0xffff:
		return 16
	}
	return 64
}

// String shows the frame's fields and at most 32 bytes of its payload, for
// failure messages.
func (f Frame) String() string {
	return fmt.Sprintf("{fin:%v rsv:%d op:%#x len:%d payload:%s}", f.Fin, f.Rsv, byte(f.Op), len(f.Payload), short(f.Payload))
}

// short is b in hex, cut after 32 bytes.
func short(b []byte) string {
	if len(b) > 32 {
		return fmt.Sprintf("%x...", b[:32])
	}
	return fmt.Sprintf("%x", b)
}

// The frame constructors below return masked client frames, ready to write.

// Data is a data (or any) frame of type op carrying p, final if fin.
func Data(op gws.OpCode, fin bool, p []byte) []byte {
	return Frame{Fin: fin, Op: op, Payload: p}.Bytes()
}

// Text is a final text frame carrying p.
func Text(p []byte) []byte { return Data(gws.OpText, true, p) }

// Binary is a final binary frame carrying p.
func Binary(p []byte) []byte { return Data(gws.OpBinary, true, p) }

// Ping is a ping carrying p.
func Ping(p []byte) []byte { return Data(gws.OpPing, true, p) }

// Pong is a pong carrying p.
func Pong(p []byte) []byte { return Data(gws.OpPong, true, p) }

// Close is a close frame with code and reason (RFC 6455 §5.5.1). A code
// below 0 gives an empty payload; other codes are put on the wire as given,
// valid or not.
func Close(code int, reason string) []byte {
	if code < 0 {
		return Data(gws.OpClose, true, nil)
	}
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return Data(gws.OpClose, true, append(p, reason...))
}

// Compressed is a compressed message (RSV1 on its first frame, RFC 7692
// §6) of type op whose deflate data is data (Deflate.Compress), in frames
// of at most size bytes (0: one frame).
func Compressed(op gws.OpCode, data []byte, size int) []byte {
	if size <= 0 || len(data) <= size {
		return Frame{Fin: true, Rsv: 4, Op: op, Payload: data}.Bytes()
	}
	out := Frame{Rsv: 4, Op: op, Payload: data[:size]}.Bytes()
	return append(out, Fragments(gws.OpContinuation, data[size:], size)...)
}

// Fragments splits p into frames of at most size bytes: the first of type
// op, the rest continuations, the last final. An empty p is one final frame.
func Fragments(op gws.OpCode, p []byte, size int) []byte {
	if len(p) == 0 {
		return Data(op, true, nil)
	}
	var out []byte
	for off := 0; off < len(p); off += size {
		end := min(off+size, len(p))
		o := gws.OpContinuation
		if off == 0 {
			o = op
		}
		out = append(out, Data(o, end == len(p), p[off:end])...)
	}
	return out
}
