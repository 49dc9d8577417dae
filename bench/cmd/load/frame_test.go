package main

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf8"
)

// unmask undoes a client frame's masking, the plain way.
func unmask(t *testing.T, frame []byte) (op byte, payload []byte) {
	t.Helper()
	n := int(frame[1] & 0x7f)
	off := 2
	switch n {
	case 126:
		n, off = int(binary.BigEndian.Uint16(frame[2:])), 4
	case 127:
		n, off = int(binary.BigEndian.Uint64(frame[2:])), 10
	}
	if frame[1]&0x80 == 0 {
		t.Fatal("client frame is not masked")
	}
	key := frame[off : off+4]
	payload = make([]byte, n)
	for i := range payload {
		payload[i] = frame[off+4+i] ^ key[i%4]
	}
	if len(frame) != off+4+n {
		t.Fatalf("frame is %d bytes, header says %d", len(frame), off+4+n)
	}
	return frame[0] & 0x0f, payload
}

func frameOf(f *clientFrame, seq uint64) []byte {
	prefix, tail := f.set(seq)
	return append(bytes.Clone(prefix), tail...)
}

func TestClientFrameCarriesStampedPayload(t *testing.T) {
	for _, size := range []int{1, 7, 16, 17, 125, 126, 65535, 65536, 1 << 20} {
		for _, text := range []bool{false, true} {
			m := newMessage(size, text)
			f := newClientFrame([]*message{m}, 3)
			other := newClientFrame([]*message{m}, 4)
			for _, seq := range []uint64{0, 1, 0xabcdef, 1<<seqBits - 1} {
				op, p := unmask(t, frameOf(f, seq))
				if op != m.op {
					t.Fatalf("size %d: opcode %d, want %d", size, op, m.op)
				}
				if !f.equalAt(seq, 0, p) {
					t.Fatalf("size %d seq %d: payload does not verify", size, seq)
				}
				if size > 1 && f.equalAt(seq+1, 0, p) {
					t.Fatalf("size %d seq %d: payload also verifies as seq+1", size, seq)
				}
				if size >= 16 && other.equalAt(seq, 0, p) {
					t.Fatalf("size %d seq %d: payload also verifies on another connection", size, seq)
				}
				if text && !utf8.Valid(p) {
					t.Fatalf("size %d: text payload is not UTF-8", size)
				}
			}
		}
	}
}

func TestEqualAtInChunks(t *testing.T) {
	m := newMessage(1000, false)
	f := newClientFrame([]*message{m}, 9)
	_, p := unmask(t, frameOf(f, 42))
	for _, chunk := range []int{1, 3, 16, 17, 999, 1000} {
		for off := 0; off < len(p); off += chunk {
			end := min(off+chunk, len(p))
			if !f.equalAt(42, off, p[off:end]) {
				t.Fatalf("chunk %d at %d does not verify", chunk, off)
			}
		}
	}
	bad := bytes.Clone(p)
	bad[500] ^= 1
	if f.equalAt(42, 496, bad[496:520]) {
		t.Fatal("a flipped bit verified")
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    header
		ok      bool
		wantErr bool
	}{
		{"empty", nil, header{}, false, false},
		{"short", []byte{0x82}, header{}, false, false},
		{"small binary", []byte{0x82, 5}, header{fin: true, op: opBinary, length: 5, size: 2}, true, false},
		{"continuation", []byte{0x00, 5}, header{op: opContinuation, length: 5, size: 2}, true, false},
		{"16-bit length short", []byte{0x81, 126, 1}, header{}, false, false},
		{"16-bit length", []byte{0x81, 126, 1, 0}, header{fin: true, op: opText, length: 256, size: 4}, true, false},
		{"64-bit length", []byte{0x82, 127, 0, 0, 0, 0, 0, 16, 0, 0}, header{fin: true, op: opBinary, length: 1 << 20, size: 10}, true, false},
		{"64-bit top bit", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, header{}, false, true},
		{"masked", []byte{0x82, 0x85}, header{}, false, true},
		{"rsv", []byte{0xc2, 5}, header{}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ok, err := parseHeader(tc.in, false)
			if (err != nil) != tc.wantErr || ok != tc.ok {
				t.Fatalf("ok %v err %v, want ok %v err %v", ok, err, tc.ok, tc.wantErr)
			}
			if ok && h != tc.want {
				t.Fatalf("got %+v, want %+v", h, tc.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	line := []byte("1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 0 0\n")
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 325 * clockTick; got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Fatal("short line parsed")
	}
}
