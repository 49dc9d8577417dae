package wire

import (
	"encoding/binary"

	gws "github.com/gobwas/ws"
)

// Header is a frame header: gobwas/ws's type, so that values pass between
// this package and gobwas-based code unchanged.
type Header = gws.Header

// MaxHeaderSize is the longest client frame header: 2 bytes, 8 of extended
// length, 4 of mask.
const MaxHeaderSize = 14

// RSV1 is the reserved bit permessage-deflate gives a meaning (RFC 7692
// §6: the message is compressed), as Header.Rsv holds it.
const RSV1 byte = 4

// OpRSV1 or-ed into the opcode given to PutHeader sets RSV1 in the header.
const OpRSV1 gws.OpCode = 0x40

// ParseHeader reads a client frame header from the start of b. It returns
// the header, its size in bytes, and complete=false when b is too short to
// hold it (a state, not an error: wait for more bytes). It checks what RFC
// 6455 §5.2 and §5.5 require of every frame before its payload is read:
// no reserved bits but those in rsv (the extensions negotiated: RSV1 with
// permessage-deflate), no reserved opcode, control frames final and at
// most 125 bytes, the mask bit set (§5.1), and the 64-bit length's most
// significant bit clear. RSV1, where allowed, may only mark a message's
// first frame, never a control frame or a continuation (RFC 7692 §6.1).
// It never allocates.
func ParseHeader(b []byte, rsv byte) (h Header, size int, complete bool, err error) {
	if len(b) < 2 {
		return h, 0, false, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.OpCode = gws.OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0
	switch {
	case h.Rsv&^rsv != 0:
		return h, 0, false, ErrReservedBits
	case h.Rsv != 0 && h.OpCode.IsControl():
		return h, 0, false, ErrCompressedControl
	case h.Rsv != 0 && h.OpCode == gws.OpContinuation:
		return h, 0, false, ErrCompressedContinuation
	case h.OpCode.IsReserved():
		return h, 0, false, ErrReservedOpcode
	case !h.Masked:
		return h, 0, false, ErrUnmasked
	}
	size = 2
	switch n := b1 & 0x7f; n {
	case 126:
		size += 2
	case 127:
		size += 8
	default:
		h.Length = int64(n)
	}
	if h.OpCode.IsControl() {
		switch {
		case !h.Fin:
			return h, 0, false, ErrFragmentedControl
		case size > 2:
			return h, 0, false, ErrControlTooLong
		}
	}
	size += 4
	if len(b) < size {
		return h, 0, false, nil
	}
	switch size {
	case 2 + 2 + 4:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 2 + 8 + 4:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, false, ErrLengthMSB
		}
		h.Length = int64(u)
	}
	copy(h.Mask[:], b[size-4:size])
	return h, size, true, nil
}

// PutHeader writes an unmasked server frame header for a payload of n bytes
// into b (at least MaxHeaderSize long) and returns its size. op may carry
// OpRSV1 for a compressed message.
func PutHeader(b []byte, fin bool, op gws.OpCode, n int) int {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b[0] = b0
	switch {
	case n < 126:
		b[1] = byte(n)
		return 2
	case n <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		return 10
	}
}

// Unmask XORs p in place with mask, p being the payload bytes from offset
// on. It is gobwas/ws's word-at-a-time Cipher.
func Unmask(p []byte, mask [4]byte, offset int) { gws.Cipher(p, mask, offset) }
