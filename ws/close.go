package ws

import "encoding/binary"

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
		return StatusNoStatusRcvd, nil, nil
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
