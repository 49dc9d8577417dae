package ws

import (
	"encoding/binary"

	gws "github.com/gobwas/ws"
)

// OpCode and StatusCode are gobwas/ws's types, so that values pass between
// this package and gobwas-based code unchanged.
type (
	OpCode     = gws.OpCode
	StatusCode = gws.StatusCode
	Header     = gws.Header
)

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation = gws.OpContinuation
	OpText         = gws.OpText
	OpBinary       = gws.OpBinary
	OpClose        = gws.OpClose
	OpPing         = gws.OpPing
	OpPong         = gws.OpPong
)

// Close status codes (RFC 6455 §7.4.1 and the IANA registry).
const (
	StatusNormalClosure      StatusCode = 1000
	StatusGoingAway          StatusCode = 1001
	StatusProtocolError      StatusCode = 1002
	StatusUnsupportedData    StatusCode = 1003
	StatusNoStatusRcvd       StatusCode = 1005
	StatusAbnormalClosure    StatusCode = 1006
	StatusInvalidPayload     StatusCode = 1007
	StatusPolicyViolation    StatusCode = 1008
	StatusMessageTooBig      StatusCode = 1009
	StatusMandatoryExtension StatusCode = 1010
	StatusInternalError      StatusCode = 1011
	StatusServiceRestart     StatusCode = 1012
	StatusTryAgainLater      StatusCode = 1013
	StatusBadGateway         StatusCode = 1014
)

// CloseError is a protocol failure and the close code that answers it, so
// that mapping an error to a close frame is one errors.As.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string { return "ws: " + e.Reason }

// Frame-level failures. They are prebuilt so that failing a connection on
// the hot path does not allocate.
var (
	ErrReservedBits      = &CloseError{StatusProtocolError, "reserved bits set without a negotiated extension"}
	ErrReservedOpcode    = &CloseError{StatusProtocolError, "reserved opcode"}
	ErrFragmentedControl = &CloseError{StatusProtocolError, "fragmented control frame"}
	ErrControlTooLong    = &CloseError{StatusProtocolError, "control frame payload over 125 bytes"}
	ErrUnmasked          = &CloseError{StatusProtocolError, "client frame not masked"}
	ErrLengthMSB         = &CloseError{StatusProtocolError, "64-bit payload length with the most significant bit set"}
	ErrUnexpectedCont    = &CloseError{StatusProtocolError, "continuation frame without a message to continue"}
	ErrExpectedCont      = &CloseError{StatusProtocolError, "new data frame inside a fragmented message"}
	ErrFrameTooBig       = &CloseError{StatusMessageTooBig, "frame exceeds the size limit"}
	ErrMessageTooBig     = &CloseError{StatusMessageTooBig, "message exceeds the size limit"}
	ErrInvalidUTF8       = &CloseError{StatusInvalidPayload, "invalid UTF-8 in a text message"}
	ErrCloseLength       = &CloseError{StatusProtocolError, "close frame payload of 1 byte"}
	ErrCloseCode         = &CloseError{StatusProtocolError, "invalid close code"}
	ErrCloseReason       = &CloseError{StatusInvalidPayload, "invalid UTF-8 in the close reason"}
	ErrSlowConsumer      = &CloseError{StatusPolicyViolation, "write queue limit exceeded: the client is not reading"}
	ErrHandler           = &CloseError{StatusInternalError, "handler failed"}
)

// MaxHeaderSize is the longest client frame header: 2 bytes, 8 of extended
// length, 4 of mask.
const MaxHeaderSize = 14

// ParseHeader reads a client frame header from the start of b. It returns
// the header, its size in bytes, and complete=false when b is too short to
// hold it (a state, not an error: wait for more bytes). It checks what RFC
// 6455 §5.2 and §5.5 require of every frame before its payload is read:
// no reserved bits (no extension is negotiated), no reserved opcode,
// control frames final and at most 125 bytes, the mask bit set (§5.1), and
// the 64-bit length's most significant bit clear. It never allocates.
func ParseHeader(b []byte) (h Header, size int, complete bool, err error) {
	if len(b) < 2 {
		return h, 0, false, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.OpCode = OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0
	switch {
	case h.Rsv != 0:
		return h, 0, false, ErrReservedBits
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
// into b (at least MaxHeaderSize long) and returns its size.
func PutHeader(b []byte, fin bool, op OpCode, n int) int {
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
