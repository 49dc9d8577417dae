package wstest

import (
	"bytes"
	"io"
	"testing"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

// serverFrame is a frame as a server writes it, by gobwas/ws's writer.
func serverFrame(t *testing.T, fin bool, op gws.OpCode, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, gws.WriteFrame(&b, gws.Frame{Header: gws.Header{Fin: fin, OpCode: op, Length: int64(len(p))}, Payload: p}))
	return b.Bytes()
}

func TestReadFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		t.Run(SizeName(n), func(t *testing.T) {
			p := Payload(n, 1)
			for _, op := range []gws.OpCode{gws.OpContinuation, gws.OpText, gws.OpBinary, gws.OpPong} {
				for _, fin := range []bool{false, true} {
					r := bytes.NewReader(serverFrame(t, fin, op, p))
					f, err := ReadFrame(r)
					require.NoError(t, err)
					require.Equal(t, Frame{Fin: fin, Op: op, Payload: p}, f)
					_, err = ReadFrame(r)
					require.Equal(t, io.EOF, err, "a clean end between frames")
				}
			}
		})
	}
	t.Run("RSV bits are reported, not refused", func(t *testing.T) {
		f, err := ReadFrame(bytes.NewReader([]byte{0xc1, 0x01, 'x'}))
		require.NoError(t, err)
		require.Equal(t, Frame{Fin: true, Rsv: 4, Op: gws.OpText, Payload: []byte("x")}, f)
	})
}

func TestReadFrameRejects(t *testing.T) {
	long := append([]byte{0x82, 127}, 0, 0, 0, 0, 0x04, 0, 0, 1) // 64 MiB + 1
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"masked", Frame{Fin: true, Op: gws.OpText, Payload: []byte("hi")}.Bytes(), ErrMasked},
		{"masked, empty", []byte{0x81, 0x80, 1, 2, 3, 4}, ErrMasked},
		{"5 bytes in 16 bits", Frame{Fin: true, Op: gws.OpBinary, Payload: []byte("hello"), LenBits: 16, Unmasked: true}.Bytes(), ErrNonMinimal},
		{"125 bytes in 16 bits", Frame{Fin: true, Op: gws.OpBinary, Payload: make([]byte, 125), LenBits: 16, Unmasked: true}.Bytes(), ErrNonMinimal},
		{"5 bytes in 64 bits", Frame{Fin: true, Op: gws.OpBinary, Payload: []byte("hello"), LenBits: 64, Unmasked: true}.Bytes(), ErrNonMinimal},
		{"65535 bytes in 64 bits", Frame{Fin: true, Op: gws.OpBinary, Payload: make([]byte, 65535), LenBits: 64, Unmasked: true}.Bytes(), ErrNonMinimal},
		{"over MaxFrame", long, ErrTooLong},
		{"64-bit length with the top bit set", Frame{Op: gws.OpBinary, RawLen: true, Length: 1 << 63, Unmasked: true}.Bytes(), ErrTooLong},
		{"cut in the first byte pair", []byte{0x81}, io.ErrUnexpectedEOF},
		{"cut in the 16-bit length", []byte{0x82, 126, 1}, io.ErrUnexpectedEOF},
		{"cut in the 64-bit length", []byte{0x82, 127, 0, 0, 0}, io.ErrUnexpectedEOF},
		{"cut in the payload", []byte{0x82, 5, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tc.b))
			require.ErrorIs(t, err, tc.want)
		})
	}
}
