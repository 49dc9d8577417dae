package wire

import (
	"encoding/binary"

	gws "github.com/gobwas/ws"
)

// StatusCode is a close status code (RFC 6455 §7.4): gobwas/ws's type.
type StatusCode = gws.StatusCode

// CloseError is a protocol failure and the close code that answers it, so
// that mapping an error to a close frame is one errors.As.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string { return "ws: " + e.Reason }

// Frame-level failures (RFC 6455 §5 and §7.4). They are prebuilt so that
// failing a connection on the hot path does not allocate.
var (
	ErrReservedBits      = &CloseError{gws.StatusProtocolError, "reserved bits set without a negotiated extension"}
	ErrReservedOpcode    = &CloseError{gws.StatusProtocolError, "reserved opcode"}
	ErrFragmentedControl = &CloseError{gws.StatusProtocolError, "fragmented control frame"}
	ErrControlTooLong    = &CloseError{gws.StatusProtocolError, "control frame payload over 125 bytes"}
	ErrUnmasked          = &CloseError{gws.StatusProtocolError, "client frame not masked"}
	ErrLengthMSB         = &CloseError{gws.StatusProtocolError, "64-bit payload length with the most significant bit set"}
	ErrUnexpectedCont    = &CloseError{gws.StatusProtocolError, "continuation frame without a message to continue"}
	ErrExpectedCont      = &CloseError{gws.StatusProtocolError, "new data frame inside a fragmented message"}
	ErrFrameTooBig       = &CloseError{gws.StatusMessageTooBig, "frame exceeds the size limit"}
	ErrMessageTooBig     = &CloseError{gws.StatusMessageTooBig, "message exceeds the size limit"}
	ErrInvalidUTF8       = &CloseError{gws.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message"}
	ErrCloseLength       = &CloseError{gws.StatusProtocolError, "close frame payload of 1 byte"}
	ErrCloseCode         = &CloseError{gws.StatusProtocolError, "invalid close code"}
	ErrCloseReason       = &CloseError{gws.StatusInvalidFramePayloadData, "invalid UTF-8 in the close reason"}

	// RFC 7692 §6.1: RSV1 marks a compressed message on its first frame
	// only; control frames are never compressed.
	ErrCompressedControl      = &CloseError{gws.StatusProtocolError, "RSV1 set on a control frame"}
	ErrCompressedContinuation = &CloseError{gws.StatusProtocolError, "RSV1 set on a continuation frame"}
	// ErrInflate: a compressed message whose data does not inflate (a
	// protocol error, as Python's websockets closes for it).
	ErrInflate = &CloseError{gws.StatusProtocolError, "invalid compressed data"}
)

// ValidCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4.1-2 and the IANA registry): 1000-1003, 1007-1014 and the
// 3000-4999 ranges for libraries and applications. 1004-1006 and 1015 are
// reserved and must never appear on the wire.
func ValidCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClose checks a close frame's (unmasked) payload: empty, or a valid
// code followed by a UTF-8 reason (RFC 6455 §5.5.1). An empty payload
// yields StatusNoStatusRcvd.
func ParseClose(p []byte) (code StatusCode, reason []byte, err error) {
	switch {
	case len(p) == 0:
		return gws.StatusNoStatusRcvd, nil, nil
	case len(p) == 1:
		return 0, nil, ErrCloseLength
	}
	code = StatusCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return code, nil, ErrCloseCode
	}
	if !ValidUTF8(p[2:]) {
		return code, nil, ErrCloseReason
	}
	return code, p[2:], nil
}

// PutClose writes a close payload (code and reason, the reason cut to fit a
// control frame, never inside a UTF-8 sequence) into b, which must hold 125
// bytes, and returns its length.
func PutClose(b []byte, code StatusCode, reason string) int {
	binary.BigEndian.PutUint16(b, uint16(code))
	if len(reason) > 123 {
		cut := 123
		for cut > 0 && reason[cut]&0xc0 == 0x80 {
			cut-- // reason[cut] continues a sequence: cut before its start
		}
		reason = reason[:cut]
	}
	return 2 + copy(b[2:125], reason)
}
