package wstest

import (
	"encoding/binary"
	"math/rand/v2"
	"unicode/utf8"
)

// Payload returns n bytes of deterministic binary data for seed, in which
// every byte value occurs.
func Payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// TextPayload returns n bytes of valid UTF-8 mixing 1- to 4-byte
// sequences, so that code points straddle every frame and read boundary.
func TextPayload(n int) []byte {
	pieces := []string{"a", "Hello", "-", "µ", "ß", "κόσμε", "€", "𝄞", "\u0800", "\U0010FFFF", " "}
	b := make([]byte, 0, n+4)
	for i := 0; len(b) < n; i++ {
		b = append(b, pieces[(i*7+i/3)%len(pieces)]...)
	}
	for len(b) > n { // cut back to n on a code point boundary, padding with ASCII
		_, size := utf8.DecodeLastRune(b)
		b = b[:len(b)-size]
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

// Cut splits b at the given offsets (ascending), for sends that must
// straddle reads. The pieces share b's memory.
func Cut(b []byte, at ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, a := range at {
		out = append(out, b[prev:a])
		prev = a
	}
	return append(out, b[prev:])
}

// FirstDiff is the index of the first byte where a and b differ, or the
// shorter one's length if one is a prefix of the other.
func FirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
