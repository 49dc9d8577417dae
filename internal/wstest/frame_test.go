package wstest

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

// readBack parses one client frame with gobwas/ws's reader, the reference,
// and returns its header and unmasked payload; it fails unless b holds
// exactly that frame.
func readBack(t *testing.T, b []byte) (gws.Header, []byte) {
	t.Helper()
	r := bytes.NewReader(b)
	h, err := gws.ReadHeader(r)
	require.NoError(t, err)
	require.EqualValues(t, h.Length, r.Len(), "bytes after the header")
	p, err := io.ReadAll(r)
	require.NoError(t, err)
	if h.Masked {
		gws.Cipher(p, h.Mask, 0)
	}
	return h, p
}

// headerSize is the size of a masked header with the minimal length
// encoding for n payload bytes.
func headerSize(n int) int {
	switch minLenBits(uint64(n)) {
	case 7:
		return 6
	case 16:
		return 8
	}
	return 14
}

// TestFrameRoundTrip encodes every opcode, RSV combination and FIN in
// every length class and reads the frame back with gobwas/ws.
func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		t.Run(SizeName(n), func(t *testing.T) {
			p := Payload(n, uint64(n))
			for op := range gws.OpCode(16) {
				for rsv := range byte(8) {
					for _, fin := range []bool{false, true} {
						f := Frame{Fin: fin, Rsv: rsv, Op: op, Payload: p}
						b := f.Bytes()
						h, got := readBack(t, b)
						want := gws.Header{Fin: fin, Rsv: rsv, OpCode: op, Masked: true, Mask: h.Mask, Length: int64(n)}
						require.Equal(t, want, h, "%v", f)
						require.Len(t, b, headerSize(n)+n, "minimal length encoding of %v", f)
						require.True(t, bytes.Equal(p, got), "payload of %v differs at %d", f, FirstDiff(p, got))
					}
				}
			}
		})
	}
}

// TestFrameWrongFields checks each field a test may get wrong on purpose.
func TestFrameWrongFields(t *testing.T) {
	p5 := []byte("short")
	for _, tc := range []struct {
		name     string
		f        Frame
		lenByte  byte   // the 7-bit length field
		declared int64  // the length in the header
		payload  []byte // what follows the header, unmasked
		masked   bool
	}{
		{"7-bit length", Frame{Op: gws.OpBinary, Payload: p5, LenBits: 7}, 5, 5, p5, true},
		{"16-bit length of 5", Frame{Op: gws.OpBinary, Payload: p5, LenBits: 16}, 126, 5, p5, true},
		{"64-bit length of 5", Frame{Op: gws.OpBinary, Payload: p5, LenBits: 64}, 127, 5, p5, true},
		{"64-bit length of 0", Frame{Op: gws.OpText, LenBits: 64}, 127, 0, nil, true},
		{"declared 126, nothing sent", Frame{Op: gws.OpPing, RawLen: true, Length: 126}, 126, 126, nil, true},
		{"declared 16 MiB + 1, nothing sent", Frame{Op: gws.OpBinary, RawLen: true, Length: 16<<20 + 1}, 127, 16<<20 + 1, nil, true},
		{"declared 4, 5 sent", Frame{Op: gws.OpBinary, Payload: p5, RawLen: true, Length: 4}, 4, 4, p5, true},
		{"unmasked", Frame{Fin: true, Op: gws.OpText, Payload: p5, Unmasked: true}, 5, 5, p5, false},
		{"unmasked, 16-bit length", Frame{Fin: true, Op: gws.OpText, Payload: p5, Unmasked: true, LenBits: 16}, 126, 5, p5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.f.Bytes()
			require.Equal(t, tc.lenByte, b[1]&0x7f)
			r := bytes.NewReader(b)
			h, err := gws.ReadHeader(r)
			require.NoError(t, err)
			require.Equal(t, tc.masked, h.Masked)
			require.Equal(t, tc.declared, h.Length)
			rest, _ := io.ReadAll(r)
			if h.Masked {
				gws.Cipher(rest, h.Mask, 0)
			}
			require.Equal(t, string(tc.payload), string(rest))
		})
	}
	t.Run("64-bit length with the top bit set", func(t *testing.T) {
		b := Frame{Op: gws.OpBinary, RawLen: true, Length: 1<<63 | 5}.Bytes()
		_, err := gws.ReadHeader(bytes.NewReader(b))
		require.ErrorIs(t, err, gws.ErrHeaderLengthMSB)
	})
	t.Run("bad LenBits panics", func(t *testing.T) {
		require.Panics(t, func() { Frame{LenBits: 8}.Bytes() })
	})
}

// TestFrameMaskVaries: each frame gets its own mask key.
func TestFrameMaskVaries(t *testing.T) {
	keys := map[[4]byte]bool{}
	for range 16 {
		h, _ := readBack(t, Text([]byte("x")))
		keys[h.Mask] = true
	}
	require.Greater(t, len(keys), 1)
}

func TestConstructors(t *testing.T) {
	hello := []byte("hello")
	for _, tc := range []struct {
		name    string
		b       []byte
		op      gws.OpCode
		fin     bool
		payload []byte
	}{
		{"Text", Text(hello), gws.OpText, true, hello},
		{"Binary", Binary(hello), gws.OpBinary, true, hello},
		{"Ping", Ping(hello), gws.OpPing, true, hello},
		{"Pong", Pong(nil), gws.OpPong, true, nil},
		{"Data first fragment", Data(gws.OpText, false, hello), gws.OpText, false, hello},
		{"Data continuation", Data(gws.OpContinuation, true, hello), gws.OpContinuation, true, hello},
		{"Close 1000", Close(1000, ""), gws.OpClose, true, []byte{0x03, 0xe8}},
		{"Close 4999 with a reason", Close(4999, "bye"), gws.OpClose, true, []byte("\x13\x87bye")},
		{"Close 5000, invalid but sent", Close(5000, ""), gws.OpClose, true, []byte{0x13, 0x88}},
		{"Close without a code", Close(-1, "ignored"), gws.OpClose, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, p := readBack(t, tc.b)
			require.Equal(t, tc.op, h.OpCode)
			require.Equal(t, tc.fin, h.Fin)
			require.Equal(t, string(tc.payload), string(p))
		})
	}
}

func TestFragments(t *testing.T) {
	p := TextPayload(1000)
	for _, tc := range []struct {
		p      []byte
		size   int
		frames int
	}{{p, 1, 1000}, {p, 7, 143}, {p, 1000, 1}, {p, 4096, 1}, {nil, 10, 1}} {
		t.Run(fmt.Sprintf("%d bytes in %d", len(tc.p), tc.size), func(t *testing.T) {
			r := bytes.NewReader(Fragments(gws.OpText, tc.p, tc.size))
			var got []byte
			for i := range tc.frames {
				f, err := gws.ReadFrame(r)
				require.NoError(t, err)
				gws.Cipher(f.Payload, f.Header.Mask, 0)
				wantOp := gws.OpContinuation
				if i == 0 {
					wantOp = gws.OpText
				}
				require.Equal(t, wantOp, f.Header.OpCode, "frame %d", i)
				require.Equal(t, i == tc.frames-1, f.Header.Fin, "FIN of frame %d", i)
				require.LessOrEqual(t, len(f.Payload), tc.size)
				got = append(got, f.Payload...)
			}
			require.Zero(t, r.Len(), "more frames than expected")
			require.Equal(t, string(tc.p), string(got))
		})
	}
}
