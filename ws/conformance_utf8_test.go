package ws_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// utf8Seq is one Autobahn section 6 payload (most come from Markus Kuhn's
// UTF-8 decoder stress test) and whether it is valid UTF-8.
type utf8Seq struct {
	id    string // Autobahn case number, or 6.X.n for ours
	desc  string
	b     []byte
	valid bool
}

func hexSeq(s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		var v byte
		fmt.Sscanf(f, "%x", &v)
		b = append(b, v)
	}
	return b
}

var kosme = []byte("κόσμε") // ce ba e1 bd b9 cf 83 ce bc ce b5

// utf8Seqs is the table of section 6 payloads.
func utf8Seqs() []utf8Seq {
	var s []utf8Seq
	add := func(id, desc string, b []byte, valid bool) {
		s = append(s, utf8Seq{id, desc, b, valid})
	}
	// 6.5: valid text.
	add("6.5.1", "κόσμε", kosme, true)
	add("6.5.2", "Hello-µ@ßöäüàá-UTF-8!!", []byte("Hello-µ@ßöäüàá-UTF-8!!"), true)
	add("6.5.3", "ASCII and 4-byte", []byte("abc 𝄞 𐍈 \U0010FFFF z"), true)
	add("6.5.4", "empty", nil, true)
	// 6.6: κόσμε cut after every byte.
	for k := 1; k <= len(kosme); k++ {
		add(fmt.Sprintf("6.6.%d", k), fmt.Sprintf("κόσμε, first %d bytes", k), kosme[:k], utf8.Valid(kosme[:k]))
	}
	// 6.7: first possible sequence of each length.
	add("6.7.1", "U+0000", hexSeq("00"), true)
	add("6.7.2", "U+0080", hexSeq("c2 80"), true)
	add("6.7.3", "U+0800", hexSeq("e0 a0 80"), true)
	add("6.7.4", "U+10000", hexSeq("f0 90 80 80"), true)
	// 6.8: first possible 5- and 6-byte sequences (not UTF-8 since RFC 3629).
	add("6.8.1", "5-byte form", hexSeq("f8 88 80 80 80"), false)
	add("6.8.2", "6-byte form", hexSeq("fc 84 80 80 80 80"), false)
	// 6.9: last possible sequence of each length.
	add("6.9.1", "U+007F", hexSeq("7f"), true)
	add("6.9.2", "U+07FF", hexSeq("df bf"), true)
	add("6.9.3", "U+FFFF", hexSeq("ef bf bf"), true)
	add("6.9.4", "U+10FFFF", hexSeq("f4 8f bf bf"), true)
	// 6.10: last possible 4-, 5-, 6-byte forms: beyond U+10FFFF.
	add("6.10.1", "U+1FFFFF", hexSeq("f7 bf bf bf"), false)
	add("6.10.2", "5-byte U+3FFFFFF", hexSeq("fb bf bf bf bf"), false)
	add("6.10.3", "6-byte U+7FFFFFFF", hexSeq("fd bf bf bf bf bf"), false)
	// 6.11: other boundaries.
	add("6.11.1", "U+D7FF", hexSeq("ed 9f bf"), true)
	add("6.11.2", "U+E000", hexSeq("ee 80 80"), true)
	add("6.11.3", "U+FFFD", hexSeq("ef bf bd"), true)
	add("6.11.4", "U+10FFFF", hexSeq("f4 8f bf bf"), true)
	add("6.11.5", "U+110000", hexSeq("f4 90 80 80"), false)
	// 6.12: unexpected continuation bytes.
	add("6.12.1", "first continuation byte 80", hexSeq("80"), false)
	add("6.12.2", "last continuation byte bf", hexSeq("bf"), false)
	add("6.12.3", "2 continuation bytes", hexSeq("80 bf"), false)
	add("6.12.4", "3 continuation bytes", hexSeq("80 bf 80"), false)
	add("6.12.5", "4 continuation bytes", hexSeq("80 bf 80 bf"), false)
	add("6.12.6", "5 continuation bytes", hexSeq("80 bf 80 bf 80"), false)
	add("6.12.7", "6 continuation bytes", hexSeq("80 bf 80 bf 80 bf"), false)
	var allCont []byte
	for c := 0x80; c <= 0xbf; c++ {
		allCont = append(allCont, byte(c))
	}
	add("6.12.8", "all 64 continuation bytes", allCont, false)
	// 6.13: lonely start bytes, each followed by a space.
	lonely := func(lo, hi int) []byte {
		var b []byte
		for c := lo; c <= hi; c++ {
			b = append(b, byte(c), ' ')
		}
		return b
	}
	add("6.13.1", "lonely 2-byte starts c0..df", lonely(0xc0, 0xdf), false)
	add("6.13.2", "lonely 3-byte starts e0..ef", lonely(0xe0, 0xef), false)
	add("6.13.3", "lonely 4-byte starts f0..f7", lonely(0xf0, 0xf7), false)
	add("6.13.4", "lonely 5-byte starts f8..fb", lonely(0xf8, 0xfb), false)
	add("6.13.5", "lonely 6-byte starts fc..fd", lonely(0xfc, 0xfd), false)
	// 6.14: sequences with the last continuation byte missing.
	missing := []string{"c0", "e0 80", "f0 80 80", "f8 80 80 80", "fc 80 80 80 80", "df", "ef bf", "f7 bf bf", "fb bf bf bf", "fd bf bf bf bf"}
	var concat []byte
	for i, m := range missing {
		add(fmt.Sprintf("6.14.%d", i+1), "last byte missing: "+m, hexSeq(m), false)
		concat = append(concat, hexSeq(m)...)
	}
	// 6.15: their concatenation.
	add("6.15.1", "concatenated incomplete sequences", concat, false)
	// 6.16: impossible bytes.
	add("6.16.1", "fe", hexSeq("fe"), false)
	add("6.16.2", "ff", hexSeq("ff"), false)
	add("6.16.3", "fe fe ff ff", hexSeq("fe fe ff ff"), false)
	// 6.17: overlong '/'.
	for i, o := range []string{"c0 af", "e0 80 af", "f0 80 80 af", "f8 80 80 80 af", "fc 80 80 80 80 af"} {
		add(fmt.Sprintf("6.17.%d", i+1), "overlong '/': "+o, hexSeq(o), false)
	}
	// 6.18: maximum overlong sequences.
	for i, o := range []string{"c1 bf", "e0 9f bf", "f0 8f bf bf", "f8 87 bf bf bf", "fc 83 bf bf bf bf"} {
		add(fmt.Sprintf("6.18.%d", i+1), "maximum overlong: "+o, hexSeq(o), false)
	}
	// 6.19: overlong NUL.
	for i, o := range []string{"c0 80", "e0 80 80", "f0 80 80 80", "f8 80 80 80 80", "fc 80 80 80 80 80"} {
		add(fmt.Sprintf("6.19.%d", i+1), "overlong NUL: "+o, hexSeq(o), false)
	}
	// 6.20: single UTF-16 surrogates.
	for i, o := range []string{"ed a0 80", "ed ad bf", "ed ae 80", "ed af bf", "ed b0 80", "ed be 80", "ed bf bf"} {
		add(fmt.Sprintf("6.20.%d", i+1), "single surrogate: "+o, hexSeq(o), false)
	}
	// 6.21: paired UTF-16 surrogates (CESU-8 is not UTF-8).
	for i, o := range []string{"ed a0 80 ed b0 80", "ed a0 80 ed bf bf", "ed ad bf ed b0 80", "ed ad bf ed bf bf", "ed ae 80 ed b0 80", "ed ae 80 ed bf bf", "ed af bf ed b0 80", "ed af bf ed bf bf"} {
		add(fmt.Sprintf("6.21.%d", i+1), "paired surrogates: "+o, hexSeq(o), false)
	}
	// 6.22: noncharacters are valid UTF-8.
	n := 0
	for plane := 0; plane <= 16; plane++ {
		for _, low := range []rune{0xfffe, 0xffff} {
			n++
			r := rune(plane)<<16 | low
			add(fmt.Sprintf("6.22.%d", n), fmt.Sprintf("noncharacter U+%04X", r), []byte(string(r)), true)
		}
	}
	// 6.23: specials.
	for i, r := range []rune{0xfff9, 0xfffa, 0xfffb, 0xfffc, 0xfffd, 0xfffe, 0xffff} {
		add(fmt.Sprintf("6.23.%d", i+1), fmt.Sprintf("special U+%04X", r), []byte(string(r)), true)
	}
	// 6.X [extra]: the validator's 8-byte ASCII fast path, at its edges.
	for i, k := range []int{7, 8, 9, 15, 16, 17} {
		a := bytes.Repeat([]byte{'a'}, k)
		add(fmt.Sprintf("6.24.%d [extra]", 3*i+1), fmt.Sprintf("%d ASCII bytes then 80", k), append(append([]byte{}, a...), 0x80), false)
		add(fmt.Sprintf("6.24.%d [extra]", 3*i+2), fmt.Sprintf("%d ASCII bytes then a 4-byte code point", k), append(append([]byte{}, a...), "😀"...), true)
		add(fmt.Sprintf("6.24.%d [extra]", 3*i+3), fmt.Sprintf("%d ASCII bytes then e2 82 (truncated €)", k), append(append([]byte{}, a...), 0xe2, 0x82), false)
	}
	add("6.25.1 [extra]", "valid text, then 0xff at byte 1000", append(wstest.TextPayload(999), 0xff), false)
	add("6.25.2 [extra]", "U+0800 boundary e0 a0 80 after e0 9f bf", hexSeq("e0 a0 80 e0 9f bf"), false)
	add("6.25.3 [extra]", "f4 8f bf c0 (bad last byte)", hexSeq("f4 8f bf c0"), false)
	add("6.25.4 [extra]", "c2 (2-byte start) then ASCII", hexSeq("c2 41"), false)
	return s
}

// section6 runs each payload four ways: as one frame, as one frame per
// byte (a code point split across fragments), as one frame written a byte
// at a time, and as one frame split in the middle with a pause (split
// across reads). Valid text is echoed byte for byte; invalid text gets 1007.
func section6() []confCase {
	// 6.1-6.4 are shaped differently from the table.
	hello := []byte("Hello-µ@ßöäüàá-UTF-8!!")
	cs := []confCase{
		{"6.1.1 empty text", steps(send(wstest.Text(nil)), expectText(nil), closeNormally())},
		{"6.1.2 empty text in 3 empty fragments", steps(send(wstest.Data(gws.OpText, false, nil), wstest.Data(gws.OpContinuation, false, nil), wstest.Data(gws.OpContinuation, true, nil)), expectText(nil), closeNormally())},
		{"6.1.3 text: empty, 'middle', empty fragment", steps(send(wstest.Data(gws.OpText, false, nil), wstest.Data(gws.OpContinuation, false, []byte("middle")), wstest.Data(gws.OpContinuation, true, nil)), expectTextS("middle"), closeNormally())},
		{"6.2.1 valid text in one frame", steps(send(wstest.Text(hello)), expectText(hello), closeNormally())},
		{"6.2.2 valid text fragmented on code points", steps(send(fragmentsAt(gws.OpText, hello, 6, 8, 9, 11, 13)), expectText(hello), closeNormally())},
		{"6.2.3 valid text, 1 byte per fragment", steps(send(wstest.Fragments(gws.OpText, hello, 1)), expectText(hello), closeNormally())},
		{"6.2.4 valid text, 1 byte per fragment, octet by octet", steps(sendChopped(1, 0, wstest.Fragments(gws.OpText, hello, 1)), expectText(hello), closeNormally())},
	}
	bad := append(append(append([]byte{}, kosme...), 0xed, 0xa0, 0x80), "edited"...)
	cs = append(cs,
		confCase{"6.3.1 invalid text in one frame", steps(send(wstest.Text(bad)), expectFail(1007))},
		confCase{"6.3.2 invalid text, 1 byte per fragment", steps(send(wstest.Fragments(gws.OpText, bad, 1)), expectFail(1007))},
	)
	// 6.4 fail fast: the close must arrive before the rest is sent.
	part1, part2, part3 := kosme, hexSeq("f4 90 80 80"), []byte("edited")
	cs = append(cs,
		confCase{"6.4.1 fail fast: invalid second fragment, before the third is sent", steps(
			send(wstest.Data(gws.OpText, false, part1), wstest.Data(gws.OpContinuation, false, part2)), expectFail(1007), send(wstest.Data(gws.OpContinuation, true, part3)))},
		confCase{"6.4.2 fail fast: first fragment, then f4 90 80 80 alone, before the rest is sent", steps(
			send(wstest.Data(gws.OpText, false, part1)), pause(ms), send(wstest.Data(gws.OpContinuation, false, hexSeq("f4"))), pause(ms), send(wstest.Data(gws.OpContinuation, false, hexSeq("90"))),
			expectFail(1007), send(wstest.Data(gws.OpContinuation, true, hexSeq("80 80 65 64 69 74 65 64"))))},
	)
	whole := wstest.Text(bytes.Join([][]byte{part1, part2, part3}, nil))
	hs := 6 // header of a frame under 126 bytes
	cs = append(cs,
		confCase{"6.4.3 fail fast: one frame, chopped; the invalid chop is answered before the rest is sent", steps(
			send(whole[:hs+len(part1)]), pause(ms), send(whole[hs+len(part1):hs+len(part1)+len(part2)]),
			expectFail(1007), send(whole[hs+len(part1)+len(part2):]))},
		confCase{"6.4.4 fail fast: one frame, chopped; the single invalid byte is answered before the rest is sent", steps(
			send(whole[:hs+len(part1)+1]), pause(ms), send(whole[hs+len(part1)+1:hs+len(part1)+2]),
			expectFail(1007), send(whole[hs+len(part1)+2:]))},
	)
	// [extra] Fail fast in a big frame: the first 1000 bytes of a declared
	// 1 MiB text frame hold an invalid byte; the rest is never sent.
	big := wstest.Frame{Fin: true, Op: gws.OpText, Payload: append(wstest.TextPayload(999), 0xc0)}
	big.Payload = append(big.Payload, wstest.TextPayload(1<<20-1000)...)
	bigB := big.Bytes()
	cs = append(cs,
		confCase{"6.4.5 [extra] fail fast: invalid byte 1000 of a 1 MiB frame, the rest never sent", steps(send(bigB[:14+1000]), expectFail(1007))},
		confCase{"6.4.6 [extra] fail fast: invalid first fragment, no final fragment ever sent", steps(send(wstest.Data(gws.OpText, false, hexSeq("41 ff"))), expectFail(1007))},
		confCase{"6.4.7 [extra] fail fast: invalid in the 2nd of 1-byte fragments of an unfinished message", steps(send(wstest.Data(gws.OpText, false, []byte("a")), wstest.Data(gws.OpContinuation, false, hexSeq("c0"))), expectFail(1007))},
	)
	for _, sq := range utf8Seqs() {
		f := wstest.Text(sq.b)
		mid := len(f) / 2
		if len(sq.b) > 0 {
			mid = 6 + len(sq.b)/2 // inside the payload
		}
		variants := []struct {
			how string
			st  step
		}{
			{"1 frame", send(f)},
			{"1 byte per fragment", send(wstest.Fragments(gws.OpText, sq.b, 1))},
			{"1 frame written 1 byte at a time", sendChopped(1, 0, f)},
			{"1 frame split across reads", sendEach(ms, wstest.Cut(f, mid)...)},
		}
		for _, v := range variants {
			name := fmt.Sprintf("%s %s (%s)", sq.id, sq.desc, v.how)
			if sq.valid {
				cs = append(cs, confCase{name, steps(v.st, expectText(sq.b), closeNormally())})
			} else {
				cs = append(cs, confCase{name, steps(v.st, expectFail(1007))})
			}
		}
	}
	return cs
}

// fragmentsAt splits p into fragments at the given offsets.
func fragmentsAt(op gws.OpCode, p []byte, at ...int) []byte {
	parts := wstest.Cut(p, at...)
	var out []byte
	for i, part := range parts {
		o := gws.OpContinuation
		if i == 0 {
			o = op
		}
		out = append(out, wstest.Data(o, i == len(parts)-1, part)...)
	}
	return out
}

// TestConformanceUTF8Random is a differential test of the server's UTF-8
// validation against Go's unicode/utf8 (which, like RFC 3629, rejects
// surrogates, overlongs and code points over U+10FFFF): random strings near
// the edges of validity, each sent in random fragments written in random
// chops. Valid ones must be echoed byte for byte on a long-lived
// connection; each invalid one gets its own connection and must get 1007.
// The seed is fixed, so a failure names a reproducible case.
func TestConformanceUTF8Random(t *testing.T) {
	addr := startEcho(t, func(c *ws.Config) { c.Workers = 1; c.ReadBufferSize = 4096 })
	rng := rand.New(rand.NewPCG(2026, 6455))
	edges := []rune{0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x10ffff}
	odd := []byte{0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xf8, 0xfe, 0xff, 0xa0, 0x9f, 0x8f, 0x90}
	gen := func() []byte {
		var b []byte
		for n := rng.IntN(24); n >= 0; n-- {
			r := edges[rng.IntN(len(edges))]
			if rng.IntN(2) == 0 {
				r = rune(rng.IntN(0x110000))
				if r >= 0xd800 && r <= 0xdfff {
					r = 'a'
				}
			}
			b = utf8.AppendRune(b, r)
		}
		if rng.IntN(2) == 0 { // damage it, maybe
			for k := rng.IntN(3); k >= 0; k-- {
				i := rng.IntN(len(b) + 1)
				b = append(b[:i], append([]byte{odd[rng.IntN(len(odd))]}, b[i:]...)...)
			}
		}
		if rng.IntN(4) == 0 && len(b) > 0 { // or cut it short
			b = b[:rng.IntN(len(b))]
		}
		return b
	}
	encode := func(p []byte) []byte {
		if len(p) == 0 || rng.IntN(3) == 0 {
			return wstest.Text(p)
		}
		var cuts []int
		for i := 1; i < len(p); i++ {
			if rng.IntN(4) == 0 {
				cuts = append(cuts, i)
			}
		}
		return fragmentsAt(gws.OpText, p, cuts...)
	}
	good := wstest.Dial(t, addr)
	valid, invalid := 0, 0
	for i := range 1500 {
		p := gen()
		b := encode(p)
		chop := 1 + rng.IntN(len(b))
		if utf8.Valid(p) {
			valid++
			good.WriteChopped(t, b, chop, 0)
			good.ExpectMessage(t, gws.OpText, p)
			continue
		}
		invalid++
		t.Run(fmt.Sprintf("invalid-%d-%x", i, p), func(t *testing.T) {
			t.Parallel()
			c := wstest.Dial(t, addr)
			c.WriteChopped(t, b, chop, 0)
			c.ExpectClose(t, 1007, false)
		})
	}
	for _, s := range closeNormally() {
		s(t, good)
	}
	t.Logf("%d valid strings echoed, %d invalid ones refused with 1007", valid, invalid)
}
