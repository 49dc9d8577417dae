package ws_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"unicode/utf8"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// Section 9: limits and performance shapes. Payloads of up to 16 MiB are
// built when a case runs, not when the table is built, and shared between
// cases (nobody writes to them).

var bigPayloads sync.Map // key string -> []byte

func bigPayload(text bool, n int) []byte {
	key := fmt.Sprintf("%v/%d", text, n)
	if v, ok := bigPayloads.Load(key); ok {
		return v.([]byte)
	}
	var p []byte
	if text {
		p = sparseText(n)
	} else {
		p = wstest.Payload(n, 99)
	}
	v, _ := bigPayloads.LoadOrStore(key, p)
	return v.([]byte)
}

// sparseText is n bytes of valid UTF-8, mostly ASCII with a 2-, 3- or
// 4-byte code point every 61 bytes: big text stays cheap to build and to
// validate under -race, and code points still straddle frame and read
// boundaries.
func sparseText(n int) []byte {
	unit := append(append(bytes.Repeat([]byte{'a'}, 51), "µ€𝄞"...), 'z') // 51+2+3+4+1 = 61 bytes
	b := bytes.Repeat(unit, n/len(unit)+1)[:n]
	i := len(b) - 1 // a code point split by the cut at n becomes ASCII
	for i > 0 && b[i]&0xc0 == 0x80 {
		i--
	}
	if i >= 0 && !utf8.Valid(b[i:]) {
		for k := i; k < len(b); k++ {
			b[k] = 'x'
		}
	}
	return b
}

func opOf(text bool) gws.OpCode {
	if text {
		return gws.OpText
	}
	return gws.OpBinary
}

func kindOf(text bool) string {
	if text {
		return "text"
	}
	return "binary"
}

// echoBig sends a text or binary message of n bytes in fragments of frag
// bytes (frag <= 0: one frame), written chop bytes at a time (chop <= 0:
// one write), and expects it back byte for byte.
func echoBig(text bool, n, frag, chop int) step {
	return func(t testing.TB, c *wstest.Client) {
		t.Helper()
		p := bigPayload(text, n)
		var b []byte
		if frag <= 0 {
			b = wstest.Frame{Fin: true, Op: opOf(text), Payload: p}.Bytes()
		} else {
			b = wstest.Fragments(opOf(text), p, frag)
		}
		if chop <= 0 {
			c.Write(t, b)
		} else {
			c.WriteChopped(t, b, chop, 0)
		}
		c.ExpectMessage(t, opOf(text), p)
	}
}

// roundTrips sends count messages of n bytes one at a time, each waiting
// for its echo.
func roundTrips(text bool, count, n int) step {
	return func(t testing.TB, c *wstest.Client) {
		t.Helper()
		p := bigPayload(text, n)
		for range count {
			c.Write(t, wstest.Frame{Fin: true, Op: opOf(text), Payload: p}.Bytes())
			c.ExpectMessage(t, opOf(text), p)
		}
	}
}

// long marks cases that move 16 MiB; -short skips them.
func long(n int) string {
	if n >= 16<<20 {
		return " [long]"
	}
	return ""
}

func section9() []confCase {
	var cs []confCase
	sizes := []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20}
	frags := []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20}
	chops := []int{64, 128, 256, 512, 1024, 2048}
	counts := []int{0, 16, 64, 256, 1024, 4096}
	for sub, text := range []bool{true, false} {
		for i, n := range sizes {
			cs = append(cs, confCase{fmt.Sprintf("9.%d.%d %s message of %s in one frame%s", 1+sub, i+1, kindOf(text), wstest.SizeName(n), long(n)),
				steps(echoBig(text, n, 0, 0), closeNormally())})
		}
	}
	for sub, text := range []bool{true, false} {
		for i, f := range frags {
			cs = append(cs, confCase{fmt.Sprintf("9.%d.%d %s message of 1 MiB in fragments of %s", 3+sub, i+1, kindOf(text), wstest.SizeName(f)),
				steps(echoBig(text, 1<<20, f, 0), closeNormally())})
		}
	}
	for sub, text := range []bool{true, false} {
		for i, ch := range chops {
			cs = append(cs, confCase{fmt.Sprintf("9.%d.%d %s message of 256 KiB written in chops of %d bytes", 5+sub, i+1, kindOf(text), ch),
				steps(echoBig(text, 256<<10, 0, ch), closeNormally())})
		}
	}
	for sub, text := range []bool{true, false} {
		for i, n := range counts {
			cs = append(cs, confCase{fmt.Sprintf("9.%d.%d 250 %s messages of %d bytes, one round trip each", 7+sub, i+1, kindOf(text), n),
				steps(roundTrips(text, 250, n), closeNormally())})
		}
	}
	// [extra] The 16 MiB limit from both sides, and many small fragments.
	over := func(text bool) step {
		return func(t testing.TB, c *wstest.Client) {
			c.Write(t, wstest.Frame{Fin: true, Op: opOf(text), RawLen: true, Length: 16<<20 + 1}.Bytes())
		}
	}
	overFrag := func(t testing.TB, c *wstest.Client) {
		p := bigPayload(false, 16<<20)
		b := wstest.Fragments(gws.OpBinary, p, 1<<20)
		c.Write(t, b[:len(b)-(1<<20+14)])
		// The last 1 MiB fragment is left off and replaced by one over the limit.
		c.Write(t, wstest.Frame{Fin: true, Op: gws.OpContinuation, RawLen: true, Length: 1<<20 + 1}.Bytes())
	}
	cs = append(cs,
		confCase{"9.9.1 [extra] text message of 16 MiB in 64 KiB fragments [long]", steps(echoBig(true, 16<<20, 64<<10, 0), closeNormally())},
		confCase{"9.9.2 [extra] binary message of 16 MiB in 256 B fragments [long]", steps(echoBig(false, 16<<20, 256, 0), closeNormally())},
		confCase{"9.9.3 [extra] text message of 16384 fragments of 1 byte", steps(echoBig(true, 16384, 1, 0), closeNormally())},
		confCase{"9.9.4 [extra] binary message of 16384 fragments of 1 byte", steps(echoBig(false, 16384, 1, 0), closeNormally())},
		confCase{"9.9.5 [extra] binary frame header of 16 MiB + 1, payload never sent", steps(over(false), expectFail(1009))},
		confCase{"9.9.6 [extra] text frame header of 16 MiB + 1, payload never sent", steps(over(true), expectFail(1009))},
		confCase{"9.9.7 [extra] 15 fragments of 1 MiB, then a fragment header of 1 MiB + 1", steps(overFrag, expectFail(1009))},
		confCase{"9.9.8 [extra] text message of 256 KiB in 2-byte fragments, written in 4 KiB pieces", steps(echoBig(true, 256<<10, 2, 4096), closeNormally())},
	)
	return cs
}

// limitCases run against a server with MaxFrameSize 4096 and
// MaxMessageSize 16384: too-big frames and messages are refused with 1009
// as soon as their header arrives.
func limitCases() []confCase {
	p4k := wstest.Payload(4096, 21)
	hdrOnly := func(op gws.OpCode, fin bool, n uint64, bits int) []byte {
		return wstest.Frame{Fin: fin, Op: op, RawLen: true, Length: n, LenBits: bits}.Bytes()
	}
	var four []byte
	for i := range 4 {
		op := gws.OpContinuation
		if i == 0 {
			op = gws.OpBinary
		}
		four = append(four, wstest.Data(op, false, p4k)...)
	}
	p16k := bytes.Repeat(p4k, 4)
	return []confCase{
		{"9.10.1 [extra] frame of exactly MaxFrameSize", steps(send(wstest.Binary(p4k)), expectBinary(p4k), closeNormally())},
		{"9.10.2 [extra] binary frame header over MaxFrameSize, payload never sent", steps(send(hdrOnly(gws.OpBinary, true, 4097, 0)), expectFail(1009))},
		{"9.10.3 [extra] text frame header over MaxFrameSize, payload never sent", steps(send(hdrOnly(gws.OpText, true, 4097, 0)), expectFail(1009))},
		{"9.10.4 [extra] frame header of 1 GiB, payload never sent", steps(send(hdrOnly(gws.OpBinary, true, 1<<30, 0)), expectFail(1009))},
		{"9.10.5 [extra] non-final first fragment over MaxFrameSize", steps(send(hdrOnly(gws.OpText, false, 5000, 0)), expectFail(1009))},
		{"9.10.6 [extra] message of exactly MaxMessageSize in 4 fragments", steps(send(four, wstest.Data(gws.OpContinuation, true, nil)), expectBinary(p16k), closeNormally())},
		{"9.10.7 [extra] message over MaxMessageSize: 4 full fragments, then a 1-byte fragment header", steps(send(four, hdrOnly(gws.OpContinuation, true, 1, 0)), expectFail(1009))},
		{"9.10.8 [extra] message of exactly MaxMessageSize in 1-byte fragments", steps(send(wstest.Fragments(gws.OpText, wstest.TextPayload(16384), 1)), expectText(wstest.TextPayload(16384)), closeNormally())},
		{"9.10.9 [extra] message over MaxMessageSize in 1-byte fragments", steps(send(wstest.Fragments(gws.OpText, wstest.TextPayload(16385), 1)), expectFail(1009))},
		{"9.10.10 [extra] good message, then a frame over MaxFrameSize", steps(send(wstest.Binary(p4k[:10]), hdrOnly(gws.OpBinary, true, 4097, 16)), expectBinary(p4k[:10]), expectFail(1009))},
		{"9.10.11 [extra] pings still answered at the limit server", steps(send(wstest.Ping(p4k[:125])), expectPong(p4k[:125]), closeNormally())},
		{"9.10.12 [extra] fragment over MaxFrameSize after a ping inside the message", steps(send(wstest.Data(gws.OpBinary, false, p4k[:5]), wstest.Ping(nil), hdrOnly(gws.OpContinuation, true, 4097, 0)), expectPong(nil), expectFail(1009))},
	}
}

func TestConformanceLimits(t *testing.T) {
	addr := startEcho(t, func(c *ws.Config) {
		c.MaxFrameSize = 4096
		c.MaxMessageSize = 16384
	})
	runCases(t, addr, dial, limitCases())
}
