package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// clientFrame builds a masked client frame the way gobwas/ws's writer does,
// as the reference our parser is checked against.
func clientFrame(t testing.TB, fin bool, op gws.OpCode, rsv byte, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := gws.Header{Fin: fin, Rsv: rsv, OpCode: op, Masked: true, Mask: [4]byte{0xa1, 0xb2, 0xc3, 0xd4}, Length: int64(len(payload))}
	require.NoError(t, gws.WriteHeader(&buf, h))
	p := bytes.Clone(payload)
	gws.Cipher(p, h.Mask, 0)
	buf.Write(p)
	return buf.Bytes()
}

func TestParseHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		payload := bytes.Repeat([]byte{'x'}, n)
		b := clientFrame(t, true, gws.OpBinary, 0, payload)
		h, size, complete, err := ParseHeader(b, 0)
		require.NoError(t, err, "len %d", n)
		require.True(t, complete)
		require.Equal(t, int64(n), h.Length)
		require.Equal(t, len(b)-n, size, "header size for len %d", n)
		require.Equal(t, [4]byte{0xa1, 0xb2, 0xc3, 0xd4}, h.Mask)
		p := b[size:]
		Unmask(p, h.Mask, 0)
		require.Equal(t, payload, p)
		// Every strict prefix of the header is incomplete, not an error.
		for i := 0; i < size; i++ {
			_, _, complete, err := ParseHeader(b[:i], 0)
			require.NoError(t, err)
			require.False(t, complete, "prefix %d of %d", i, size)
		}
	}
}

func TestParseHeaderRejects(t *testing.T) {
	msb := make([]byte, 14)
	msb[0], msb[1] = 0x82, 0x80|127
	binary.BigEndian.PutUint64(msb[2:], 1<<63)
	cases := []struct {
		name string
		b    []byte
		want *CloseError
	}{
		{"rsv1", clientFrame(t, true, gws.OpText, 4, nil), ErrReservedBits},
		{"rsv2", clientFrame(t, true, gws.OpText, 2, nil), ErrReservedBits},
		{"rsv3", clientFrame(t, true, gws.OpBinary, 1, nil), ErrReservedBits},
		{"opcode 3", clientFrame(t, true, 3, 0, nil), ErrReservedOpcode},
		{"opcode 7", clientFrame(t, true, 7, 0, nil), ErrReservedOpcode},
		{"opcode 0xB", clientFrame(t, true, 0xb, 0, nil), ErrReservedOpcode},
		{"opcode 0xF", clientFrame(t, true, 0xf, 0, nil), ErrReservedOpcode},
		{"unmasked", []byte{0x81, 0x00}, ErrUnmasked},
		{"fragmented ping", clientFrame(t, false, gws.OpPing, 0, nil), ErrFragmentedControl},
		{"fragmented close", clientFrame(t, false, gws.OpClose, 0, nil), ErrFragmentedControl},
		{"ping 126 bytes", clientFrame(t, true, gws.OpPing, 0, make([]byte, 126)), ErrControlTooLong},
		{"64-bit length MSB", msb, ErrLengthMSB},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := ParseHeader(tc.b, 0)
			require.Equal(t, tc.want, err)
			require.Equal(t, gws.StatusProtocolError, tc.want.Code)
		})
	}
}

// TestParseHeaderRSV1 checks the reserved bits with permessage-deflate
// negotiated (RFC 7692 §6.1): RSV1 on a message's first frame only.
func TestParseHeaderRSV1(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want *CloseError
	}{
		{"compressed text", clientFrame(t, true, gws.OpText, 4, []byte("x")), nil},
		{"compressed binary, first fragment", clientFrame(t, false, gws.OpBinary, 4, []byte("x")), nil},
		{"continuation without RSV1", clientFrame(t, true, gws.OpContinuation, 0, []byte("x")), nil},
		{"continuation with RSV1", clientFrame(t, true, gws.OpContinuation, 4, []byte("x")), ErrCompressedContinuation},
		{"ping with RSV1", clientFrame(t, true, gws.OpPing, 4, nil), ErrCompressedControl},
		{"pong with RSV1", clientFrame(t, true, gws.OpPong, 4, nil), ErrCompressedControl},
		{"close with RSV1", clientFrame(t, true, gws.OpClose, 4, []byte{3, 0xe8}), ErrCompressedControl},
		{"RSV2", clientFrame(t, true, gws.OpText, 2, nil), ErrReservedBits},
		{"RSV1 and RSV3", clientFrame(t, true, gws.OpText, 5, nil), ErrReservedBits},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, complete, err := ParseHeader(tc.b, RSV1)
			if tc.want == nil {
				require.NoError(t, err)
				require.True(t, complete)
				return
			}
			require.Equal(t, tc.want, err)
			require.Equal(t, gws.StatusProtocolError, tc.want.Code)
		})
	}
	// Without the extension, RSV1 is a reserved bit like the others.
	_, _, _, err := ParseHeader(clientFrame(t, true, gws.OpText, 4, nil), 0)
	require.Equal(t, ErrReservedBits, err)
}

func TestPutHeaderRSV1(t *testing.T) {
	b := make([]byte, MaxHeaderSize)
	n := PutHeader(b, true, gws.OpText|OpRSV1, 300)
	var want bytes.Buffer
	require.NoError(t, gws.WriteHeader(&want, gws.Header{Fin: true, Rsv: RSV1, OpCode: gws.OpText, Length: 300}))
	require.Equal(t, want.Bytes(), b[:n])
}

func TestPutHeaderMatchesGobwas(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 16 << 20} {
		for _, op := range []gws.OpCode{gws.OpText, gws.OpBinary, gws.OpPing, gws.OpPong, gws.OpClose} {
			var want bytes.Buffer
			require.NoError(t, gws.WriteHeader(&want, gws.Header{Fin: true, OpCode: op, Length: int64(n)}))
			got := make([]byte, MaxHeaderSize)
			k := PutHeader(got, true, op, n)
			require.Equal(t, want.Bytes(), got[:k], "op %d len %d", op, n)
		}
	}
}

// TestUnmaskOffsets checks the in-place unmasking against a byte-at-a-time
// XOR for every offset and tail length, as gobwas cipher_test does.
func TestUnmaskOffsets(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	for n := 0; n < 70; n++ {
		for off := 0; off < 8; off++ {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			want := bytes.Clone(p)
			for i := range want {
				want[i] ^= mask[(off+i)%4]
			}
			Unmask(p, mask, off)
			require.Equal(t, want, p, "n=%d off=%d", n, off)
		}
	}
}

// TestHotPathAllocs proves the per-message work allocates nothing: parse a
// header, unmask, validate text, write the reply header.
func TestHotPathAllocs(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	frame := clientFrame(t, true, gws.OpText, 0, bytes.Repeat([]byte("héllo wörld "), 100))
	work := make([]byte, len(frame))
	hdr := make([]byte, MaxHeaderSize)
	allocs := testing.AllocsPerRun(1000, func() {
		copy(work, frame)
		h, size, complete, err := ParseHeader(work, 0)
		if err != nil || !complete {
			t.Fatal("parse failed")
		}
		p := work[size : size+int(h.Length)]
		Unmask(p, h.Mask, 0)
		if !ValidUTF8(p) {
			t.Fatal("utf8")
		}
		PutHeader(hdr, true, h.OpCode, len(p))
	})
	require.Zero(t, allocs)
}

func BenchmarkParseHeader(b *testing.B) {
	for _, n := range []int{64, 1024, 65536} {
		frame := clientFrame(b, true, gws.OpBinary, 0, make([]byte, n))
		b.Run(wstest.SizeName(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok, err := ParseHeader(frame, 0); !ok || err != nil {
					b.Fatal("parse")
				}
			}
		})
	}
}

func BenchmarkUnmask(b *testing.B) {
	for _, n := range []int{7, 64, 1024, 16 << 10, 1 << 20} {
		p := make([]byte, n)
		b.Run(wstest.SizeName(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				Unmask(p, [4]byte{1, 2, 3, 4}, 0)
			}
		})
	}
}

// FuzzParseHeader checks the incremental parser against gobwas/ws's
// reader: whatever ours accepts, gobwas reads the same way; ours never reads
// past the header it reports, and a prefix is never "complete".
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}) // 64-bit length, MSB set
	f.Add([]byte{0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4})                // ping with 126 bytes
	f.Add([]byte{0x01, 0x80, 1, 2, 3, 4})
	f.Add([]byte{0xc1, 0x80, 1, 2, 3, 4})
	f.Add([]byte{0xc1, 0x81, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rsv byte // the RSV bits allowed: permessage-deflate for inputs of odd length
		if len(b)%2 == 1 {
			rsv = RSV1
		}
		h, size, complete, err := ParseHeader(b, rsv)
		if err != nil {
			if _, ok := err.(*CloseError); !ok {
				t.Fatalf("error %T is not a CloseError", err)
			}
			return
		}
		if !complete {
			return
		}
		if size > len(b) || size < 6 || size > MaxHeaderSize {
			t.Fatalf("size %d for %d bytes", size, len(b))
		}
		if _, _, c, _ := ParseHeader(b[:size-1], rsv); c {
			t.Fatalf("a strict prefix parsed as complete")
		}
		ref, rerr := gws.ReadHeader(bytes.NewReader(b[:size]))
		if rerr != nil {
			t.Fatalf("gobwas rejects what we accept: %v", rerr)
		}
		if ref != h {
			t.Fatalf("header %+v, gobwas reads %+v", h, ref)
		}
	})
}
