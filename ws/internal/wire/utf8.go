package wire

import (
	"encoding/binary"
)

// UTF8State is the state of an incremental UTF-8 validation: zero between
// whole code points, otherwise what the next continuation byte must be. It
// carries validation across frame and read boundaries, so a text message is
// rejected at its first bad byte (fail fast), not at its end.
type UTF8State uint8

// States of the validator (RFC 3629 §4, the well-formed byte sequences).
const (
	utf8Accept UTF8State = iota // between code points
	utf8Need1                   // 1 more byte, 80..BF
	utf8Need2                   // 2 more, next 80..BF
	utf8Need3                   // 3 more, next 80..BF
	utf8E0                      // after E0: 2 more, next A0..BF (no overlongs)
	utf8ED                      // after ED: 2 more, next 80..9F (no surrogates)
	utf8F0                      // after F0: 3 more, next 90..BF (no overlongs)
	utf8F4                      // after F4: 3 more, next 80..8F (max U+10FFFF)
	utf8Reject                  // invalid; stays invalid
	utf8States
)

// utf8Next is the transition table: utf8Next[state][byte].
var utf8Next = func() (t [utf8States][256]UTF8State) {
	for s := range t {
		for b := range t[s] {
			t[s][b] = utf8Reject
		}
	}
	rng := func(s UTF8State, lo, hi int, to UTF8State) {
		for b := lo; b <= hi; b++ {
			t[s][b] = to
		}
	}
	rng(utf8Accept, 0x00, 0x7f, utf8Accept)
	rng(utf8Accept, 0xc2, 0xdf, utf8Need1)
	rng(utf8Accept, 0xe0, 0xe0, utf8E0)
	rng(utf8Accept, 0xe1, 0xec, utf8Need2)
	rng(utf8Accept, 0xed, 0xed, utf8ED)
	rng(utf8Accept, 0xee, 0xef, utf8Need2)
	rng(utf8Accept, 0xf0, 0xf0, utf8F0)
	rng(utf8Accept, 0xf1, 0xf3, utf8Need3)
	rng(utf8Accept, 0xf4, 0xf4, utf8F4)
	rng(utf8Need1, 0x80, 0xbf, utf8Accept)
	rng(utf8Need2, 0x80, 0xbf, utf8Need1)
	rng(utf8Need3, 0x80, 0xbf, utf8Need2)
	rng(utf8E0, 0xa0, 0xbf, utf8Need1)
	rng(utf8ED, 0x80, 0x9f, utf8Need1)
	rng(utf8F0, 0x90, 0xbf, utf8Need2)
	rng(utf8F4, 0x80, 0x8f, utf8Need2)
	return t
}()

// ValidateUTF8 continues a validation in state s over p. It returns the new
// state and false as soon as p holds a byte that cannot continue a valid
// sequence. A message is valid when the state after its last byte is
// complete (see UTF8State.Complete). It never allocates.
func ValidateUTF8(s UTF8State, p []byte) (UTF8State, bool) {
	i := 0
	for i < len(p) {
		if s == utf8Accept {
			// ASCII fast path: 16, then 8 bytes per step while no high bit
			// is set.
			for i+16 <= len(p) && (binary.LittleEndian.Uint64(p[i:])|binary.LittleEndian.Uint64(p[i+8:]))&0x8080808080808080 == 0 {
				i += 16
			}
			for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 == 0 {
				i += 8
			}
			for i < len(p) && p[i] < 0x80 {
				i++
			}
			if i == len(p) {
				break
			}
		}
		s = utf8Next[s][p[i]]
		if s == utf8Reject {
			return s, false
		}
		i++
	}
	return s, true
}

// Complete reports whether the state is between code points, i.e. the text
// so far is whole valid UTF-8.
func (s UTF8State) Complete() bool { return s == utf8Accept }

// ValidUTF8 reports whether p is whole valid UTF-8.
func ValidUTF8(p []byte) bool {
	s, ok := ValidateUTF8(utf8Accept, p)
	return ok && s.Complete()
}
