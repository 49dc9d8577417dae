package main

import (
	"bytes"
	"compress/flate"
	"io"
	"testing"
)

// TestCompressedMessages: each variant's frame is RSV1 text whose payload
// inflates (with the standard library, as RFC 7692 §7.2.2 says) to the
// stamped JSON-like message, and is what equalWire and equalAt accept.
func TestCompressedMessages(t *testing.T) {
	for _, size := range []int{16, 100, 1024, 16 << 10, 70000} {
		ms := newCompressedMessages(size)
		f := newClientFrame(ms, 7)
		for _, seq := range []uint64{0, 1, 63, 64, 12345} {
			frame := frameOf(f, seq)
			if frame[0] != 0x80|0x40|opText {
				t.Fatalf("size %d: first byte %#x", size, frame[0])
			}
			_, p := unmask(t, frame)
			if !f.equalWire(seq, p) || f.equalWire(seq+1, p) {
				t.Fatalf("size %d seq %d: equalWire", size, seq)
			}
			out, err := io.ReadAll(flate.NewReader(bytes.NewReader(append(p, tail...))))
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != size || !f.equalAt(seq, 0, out) || size > 16 && bytes.Equal(out[16:], f.msg(seq + 1).plain[16:]) {
				t.Fatalf("size %d seq %d: inflates to %d bytes %q...", size, seq, len(out), out[:min(len(out), 40)])
			}
		}
	}
}
