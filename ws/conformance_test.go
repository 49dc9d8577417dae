package ws_test

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// The conformance suite: Autobahn|TestSuite sections 1-7 and 9 (and our
// own extra cases, marked [extra]) against the real server over loopback.
// Every case ends with the exact close code the server must send, and every
// echo is compared byte for byte. docs/CONFORMANCE.md maps the cases.

// confCase is one named case: a script of sends and expectations run on a
// fresh connection.
type confCase struct {
	name  string
	steps []step
}

// serverConfigs are the server configurations every protocol case runs
// against: the echo defaults with 2 loops, and 1 loop with the smallest read
// buffer, so that frames up to 64 KiB are split across reads and the
// leftover-carrying paths run.
var serverConfigs = []struct {
	name string
	mod  func(*ws.Config)
}{
	{"workers=2", func(c *ws.Config) { c.Workers = 2 }},
	{"workers=1,rbuf=4k", func(c *ws.Config) { c.Workers = 1; c.ReadBufferSize = 4096 }},
}

// protocolCases is the table of sections 1-7 and the framing extras; they
// run against every configuration in serverConfigs.
func protocolCases() []confCase {
	var all []confCase
	for _, sec := range [][]confCase{
		section1(), section2(), section3(), section4(), section5(),
		section6(), section7(), sectionFraming(),
	} {
		all = append(all, sec...)
	}
	return all
}

func TestConformance(t *testing.T) {
	cases := protocolCases()
	checkNames(t, append(cases, section9()...))
	for _, sc := range serverConfigs {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			srv := startEchoServer(t, sc.mod)
			addr := srv.Addr().String()
			if rb := srv.Config().ReadBufferSize; rb < 64<<10 {
				checkSmallReads(t, srv, rb)
			}
			cases := cases
			if sc.name == serverConfigs[0].name {
				// Section 9 moves about 300 MiB each way; it runs against the
				// echo defaults only, to keep the suite fast on 2 cores.
				cases = append(cases[:len(cases):len(cases)], section9()...)
			}
			runCases(t, addr, dial, cases)
		})
	}
}

// checkSmallReads proves that a server configured with a read buffer of rb
// bytes splits frames across reads, as the small-buffer configuration
// promises: a 60 KiB frame (below the size the loop reads straight into a
// reassembly buffer) takes at least 60 KiB/rb reads of at most rb bytes.
// Once every case has run (before the shutdown), the leftover paths must
// have run too: partial input carried between reads, payloads streamed
// into reassembly buffers.
func checkSmallReads(t *testing.T, srv *ws.Server, rb int) {
	t.Helper()
	reads := func() (calls, bytes, copied uint64) {
		for _, l := range srv.Stats().Loops {
			calls, bytes, copied = calls+l.ReadCalls, bytes+l.BytesIn, copied+l.CopiedIn
		}
		return
	}
	c := wstest.Dial(t, srv.Addr().String())
	calls0, bytes0, _ := reads()
	p := wstest.Payload(60<<10, 7)
	c.Write(t, wstest.Binary(p))
	c.ExpectMessage(t, gws.OpBinary, p)
	c.Close()
	calls, bytes, _ := reads()
	calls, bytes = calls-calls0, bytes-bytes0
	t.Logf("read buffer %d bytes: a %d-byte frame took %d reads (%d bytes)", rb, len(p), calls, bytes)
	if calls < uint64(len(p)/rb) || bytes > calls*uint64(rb) {
		t.Fatalf("read buffer %d bytes: %d bytes in %d reads; want at least %d reads of at most %d bytes", rb, bytes, calls, len(p)/rb, rb)
	}
	t.Cleanup(func() {
		_, _, copied := reads()
		st := srv.Stats()
		t.Logf("read buffer %d bytes: %d bytes of partial input carried between reads, %d payload bytes reassembled", rb, copied, st.Reassembled)
		if copied == 0 || st.Reassembled == 0 {
			t.Errorf("read buffer %d bytes: carried %d bytes, reassembled %d: the split-frame paths did not run", rb, copied, st.Reassembled)
		}
	})
}

// runCases runs each case in a parallel subtest of its own, on a
// connection to addr that open makes: dial, or wstest.DialRaw for cases
// that start before the handshake. -short leaves out the cases marked
// [long].
func runCases(t *testing.T, addr string, open func(testing.TB, string) *wstest.Client, cases []confCase) {
	for _, tc := range cases {
		if testing.Short() && strings.Contains(tc.name, "[long]") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := open(t, addr)
			for _, s := range tc.steps {
				s(t, c)
			}
		})
	}
}

// dial opens a connection and runs the handshake, for runCases.
func dial(t testing.TB, addr string) *wstest.Client { return wstest.Dial(t, addr) }

// checkNames fails on duplicate case names, so that counts per section are
// honest.
func checkNames(t *testing.T, cases []confCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
	}
}

// TestConformanceCount logs the number of cases per section (for
// docs/CONFORMANCE.md) and guards the minimum the project promises.
func TestConformanceCount(t *testing.T) {
	counts := map[string]int{}
	total := 0
	add := func(cases []confCase) {
		for _, c := range cases {
			sec, _, _ := strings.Cut(c.name, ".")
			sec, _, _ = strings.Cut(sec, " ")
			counts[sec]++
			total++
		}
	}
	add(protocolCases())
	add(section9())
	add(limitCases())
	add(handshakeCases())
	add(appCases())
	add(section12and13(1))
	var secs []string
	for s := range counts {
		secs = append(secs, s)
	}
	sort.Strings(secs)
	for _, s := range secs {
		t.Logf("section %-3s %4d cases", s, counts[s])
	}
	t.Logf("total       %4d cases", total)
	if total < 250 {
		t.Fatalf("only %d conformance cases, want at least 250", total)
	}
}

var (
	helloWorld = []byte("Hello, world!")
	ms         = time.Millisecond
)

// Section 1: framing, text and binary payloads of every length class.
func section1() []confCase {
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	var cs []confCase
	for i, n := range sizes {
		p := wstest.TextPayload(n)
		cs = append(cs, confCase{
			fmt.Sprintf("1.1.%d text payload %d bytes", i+1, n),
			steps(send(wstest.Text(p)), expectText(p), closeNormally()),
		})
	}
	p := wstest.TextPayload(65536)
	cs = append(cs, confCase{"1.1.8 text payload 65536 bytes in chops of 997",
		steps(sendChopped(997, 0, wstest.Text(p)), expectText(p), closeNormally())})
	for i, n := range sizes {
		p := wstest.Payload(n, 12)
		cs = append(cs, confCase{
			fmt.Sprintf("1.2.%d binary payload %d bytes", i+1, n),
			steps(send(wstest.Binary(p)), expectBinary(p), closeNormally()),
		})
	}
	p = wstest.Payload(65536, 13)
	cs = append(cs, confCase{"1.2.8 binary payload 65536 bytes in chops of 997",
		steps(sendChopped(997, 0, wstest.Binary(p)), expectBinary(p), closeNormally())})

	// [extra] A frame split after every header byte: 2-byte, 4-byte and
	// 10-byte length encodings, the mask key, and the first payload byte.
	for _, n := range []int{5, 300, 70000} {
		p := wstest.Payload(n, 14)
		f := wstest.Binary(p)
		hs := 6
		switch {
		case n > 0xffff:
			hs = 14
		case n > 125:
			hs = 8
		}
		for cut := 1; cut <= hs; cut++ {
			cs = append(cs, confCase{
				fmt.Sprintf("1.3.%d [extra] binary %d bytes split after byte %d", len(cs)-15, n, cut),
				steps(sendEach(2*ms, f[:cut], f[cut:]), expectBinary(p), closeNormally()),
			})
		}
	}
	// [extra] Many messages in one write, and a message chopped into every
	// byte with a close in the same write.
	var many []byte
	var expect []step
	for i := range 200 {
		p := wstest.TextPayload(i)
		many = append(many, wstest.Text(p)...)
		expect = append(expect, expectText(p))
	}
	cs = append(cs, confCase{"1.4.1 [extra] 200 text messages of 0..199 bytes in one write",
		steps(send(many), expect, closeNormally())})
	cs = append(cs, confCase{"1.4.2 [extra] 200 text messages of 0..199 bytes written 1 byte at a time",
		steps(sendChopped(1, 0, many), expect, closeNormally())})
	cs = append(cs, confCase{"1.4.3 [extra] 200 text messages then close in one write",
		steps(send(many, wstest.Close(1000, "")), expect, expectCloseEcho(1000))})
	return cs
}

// Section 2: pings and pongs.
func section2() []confCase {
	p125 := bytes.Repeat([]byte{0xfe}, 125)
	small := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	cs := []confCase{
		{"2.1 ping without payload", steps(send(wstest.Ping(nil)), expectPong(nil), closeNormally())},
		{"2.2 ping with small text payload", steps(send(wstest.Ping(helloWorld)), expectPong(helloWorld), closeNormally())},
		{"2.3 ping with small binary payload", steps(send(wstest.Ping(small)), expectPong(small), closeNormally())},
		{"2.4 ping with 125-byte binary payload", steps(send(wstest.Ping(p125)), expectPong(p125), closeNormally())},
		{"2.5 ping with 126-byte payload", steps(send(wstest.Frame{Fin: true, Op: gws.OpPing, Payload: bytes.Repeat([]byte{0xfe}, 126)}.Bytes()), expectFail(1002))},
		{"2.6 ping with 125-byte payload written 1 byte at a time", steps(sendChopped(1, ms/4, wstest.Ping(p125)), expectPong(p125), closeNormally())},
		{"2.7 unsolicited pong without payload", steps(send(wstest.Pong(nil)), closeNormally())},
		{"2.8 unsolicited pong with payload", steps(send(wstest.Pong([]byte("unsolicited pong payload"))), closeNormally())},
		{"2.9 unsolicited pong, then ping", steps(send(wstest.Pong([]byte("unsolicited pong payload")), wstest.Ping([]byte("ping payload"))), expectPong([]byte("ping payload")), closeNormally())},
	}
	var pings [][]byte
	var pongs []step
	for i := range 10 {
		p := []byte(fmt.Sprintf("payload-%d", i))
		pings = append(pings, wstest.Ping(p))
		pongs = append(pongs, expectPong(p))
	}
	cs = append(cs,
		confCase{"2.10 10 pings in one write", steps(send(pings...), pongs, closeNormally())},
		confCase{"2.11 10 pings written one by one with pauses", steps(sendEach(ms, pings...), pongs, closeNormally())},
	)
	// [extra] More pings in one read than one writev takes (IOV_MAX) and
	// than the loop's header scratch holds.
	var many []byte
	var manyPongs []step
	for i := range 2000 {
		p := []byte(fmt.Sprintf("%d", i))
		many = append(many, wstest.Ping(p)...)
		manyPongs = append(manyPongs, expectPong(p))
	}
	cs = append(cs,
		confCase{"2.12 [extra] 2000 pings in one write", steps(send(many), manyPongs, closeNormally())},
		confCase{"2.13 [extra] ping split inside its payload", steps(sendEach(2*ms, wstest.Cut(wstest.Ping(p125), 70)...), expectPong(p125), closeNormally())},
		confCase{"2.14 [extra] pong with 126-byte payload", steps(send(wstest.Frame{Fin: true, Op: gws.OpPong, Payload: make([]byte, 126)}.Bytes()), expectFail(1002))},
		confCase{"2.15 [extra] ping declaring 126 bytes, header only", steps(send(wstest.Frame{Fin: true, Op: gws.OpPing, RawLen: true, Length: 126}.Bytes()), expectFail(1002))},
	)
	// [extra] 512 one-byte echoes fill the loop's 1024 iovecs, so the 513th
	// reply's header is queued across a flush; 600 more replies that take
	// one iovec each (empty pongs, empty echoes) must not reuse its bytes.
	for i, later := range []struct {
		name  string
		frame []byte
		want  step
	}{{"empty pings", wstest.Ping(nil), expectPong(nil)}, {"empty binary messages", wstest.Binary(nil), expectBinary(nil)}} {
		var b []byte
		var want []step
		for range 512 {
			b = append(b, wstest.Binary([]byte{1})...)
			want = append(want, expectBinary([]byte{1}))
		}
		b = append(b, wstest.Binary([]byte{2, 2, 2})...)
		want = append(want, expectBinary([]byte{2, 2, 2}))
		for range 600 {
			b = append(b, later.frame...)
			want = append(want, later.want)
		}
		cs = append(cs, confCase{fmt.Sprintf("2.%d [extra] 513 binary messages then 600 %s in one write", 16+i, later.name),
			steps(send(b), want, closeNormally())})
	}
	return cs
}

// Section 3: reserved bits (no extension is negotiated, so any RSV bit is
// a protocol error, RFC 6455 §5.2).
func section3() []confCase {
	small := []byte("Hello, world!")
	rsvText := func(rsv byte) []byte {
		return wstest.Frame{Fin: true, Rsv: rsv, Op: gws.OpText, Payload: small}.Bytes()
	}
	cs := []confCase{
		{"3.1 text with RSV=1", steps(send(rsvText(1)), expectFail(1002))},
		{"3.2 text, text with RSV=2, ping", steps(send(wstest.Text(small), rsvText(2), wstest.Ping(small)), expectText(small), expectFail(1002))},
		{"3.3 text, text with RSV=3, ping, frame by frame", steps(sendEach(ms, wstest.Text(small), rsvText(3), wstest.Ping(small)), expectText(small), expectFail(1002))},
		{"3.4 text, text with RSV=4, ping, octet by octet", steps(sendChopped(1, 0, wstest.Text(small), rsvText(4), wstest.Ping(small)), expectText(small), expectFail(1002))},
		{"3.5 binary with RSV=5", steps(send(wstest.Frame{Fin: true, Rsv: 5, Op: gws.OpBinary, Payload: wstest.Payload(8, 3)}.Bytes()), expectFail(1002))},
		{"3.6 ping with RSV=6", steps(send(wstest.Frame{Fin: true, Rsv: 6, Op: gws.OpPing, Payload: small}.Bytes()), expectFail(1002))},
		{"3.7 close with RSV=7", steps(send(wstest.Frame{Fin: true, Rsv: 7, Op: gws.OpClose, Payload: []byte{0x03, 0xe8}}.Bytes()), expectFail(1002))},
	}
	// [extra] Every RSV combination on every other frame kind, after a good
	// message whose echo must arrive first.
	n := 0
	for _, k := range []struct {
		name string
		op   gws.OpCode
		fin  bool
	}{{"pong", gws.OpPong, true}, {"continuation", gws.OpContinuation, true}, {"first fragment", gws.OpText, false}} {
		for rsv := byte(1); rsv <= 7; rsv++ {
			n++
			pre := []byte{}
			if k.op == gws.OpContinuation {
				pre = wstest.Data(gws.OpText, false, []byte("frag"))
			}
			cs = append(cs, confCase{
				fmt.Sprintf("3.8.%d [extra] binary, then %s with RSV=%d", n, k.name, rsv),
				steps(send(wstest.Binary(small), pre, wstest.Frame{Fin: k.fin, Rsv: rsv, Op: k.op, Payload: small}.Bytes()), expectBinary(small), expectFail(1002)),
			})
		}
	}
	return cs
}

// Section 4: reserved opcodes.
func section4() []confCase {
	small := []byte("Hello, world!")
	var cs []confCase
	for i, sub := range []struct {
		sec int
		ops [5]gws.OpCode
	}{{1, [5]gws.OpCode{3, 4, 5, 6, 7}}, {2, [5]gws.OpCode{0xb, 0xc, 0xd, 0xe, 0xf}}} {
		_ = i
		o := sub.ops
		r := func(op gws.OpCode, p []byte) []byte { return wstest.Frame{Fin: true, Op: op, Payload: p}.Bytes() }
		cs = append(cs,
			confCase{fmt.Sprintf("4.%d.1 opcode %#x without payload", sub.sec, o[0]), steps(send(r(o[0], nil)), expectFail(1002))},
			confCase{fmt.Sprintf("4.%d.2 opcode %#x with payload", sub.sec, o[1]), steps(send(r(o[1], []byte("reserved opcode payload"))), expectFail(1002))},
			confCase{fmt.Sprintf("4.%d.3 text, opcode %#x, ping", sub.sec, o[2]), steps(send(wstest.Text(small), r(o[2], nil), wstest.Ping(small)), expectText(small), expectFail(1002))},
			confCase{fmt.Sprintf("4.%d.4 text, opcode %#x with payload, ping, frame by frame", sub.sec, o[3]), steps(sendEach(ms, wstest.Text(small), r(o[3], small), wstest.Ping(small)), expectText(small), expectFail(1002))},
			confCase{fmt.Sprintf("4.%d.5 text, opcode %#x with payload, ping, octet by octet", sub.sec, o[4]), steps(sendChopped(1, 0, wstest.Text(small), r(o[4], small), wstest.Ping(small)), expectText(small), expectFail(1002))},
		)
	}
	// [extra] Every reserved opcode with and without FIN, and inside a
	// fragmented message.
	n := 0
	for _, op := range []gws.OpCode{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		n++
		cs = append(cs, confCase{
			fmt.Sprintf("4.3.%d [extra] opcode %#x without FIN", n, op),
			steps(send(wstest.Frame{Op: op, Payload: small}.Bytes()), expectFail(1002)),
		})
		n++
		cs = append(cs, confCase{
			fmt.Sprintf("4.3.%d [extra] opcode %#x between fragments", n, op),
			steps(send(wstest.Data(gws.OpText, false, small), wstest.Frame{Fin: true, Op: op}.Bytes(), wstest.Data(gws.OpContinuation, true, small)), expectFail(1002)),
		})
	}
	return cs
}

// Section 5: fragmentation.
func section5() []confCase {
	f1, f2 := []byte("fragment1"), []byte("fragment2")
	both := []byte("fragment1fragment2")
	pingP := []byte("ping payload")
	frag := wstest.Data
	cs := []confCase{
		{"5.1 ping fragmented into 2 frames", steps(send(wstest.Frame{Op: gws.OpPing, Payload: f1}.Bytes(), frag(gws.OpContinuation, true, f2)), expectFail(1002))},
		{"5.2 pong fragmented into 2 frames", steps(send(wstest.Frame{Op: gws.OpPong, Payload: f1}.Bytes(), frag(gws.OpContinuation, true, f2)), expectFail(1002))},
		{"5.3 text in 2 fragments", steps(send(frag(gws.OpText, false, f1), frag(gws.OpContinuation, true, f2)), expectText(both), closeNormally())},
		{"5.4 text in 2 fragments, octet by octet", steps(sendChopped(1, 0, frag(gws.OpText, false, f1), frag(gws.OpContinuation, true, f2)), expectText(both), closeNormally())},
		{"5.5 text in 2 fragments, frame by frame", steps(sendEach(ms, frag(gws.OpText, false, f1), frag(gws.OpContinuation, true, f2)), expectText(both), closeNormally())},
		{"5.6 text in 2 fragments with a ping between", steps(send(frag(gws.OpText, false, f1), wstest.Ping(pingP), frag(gws.OpContinuation, true, f2)), expectPong(pingP), expectText(both), closeNormally())},
		{"5.7 text in 2 fragments with a ping between, octet by octet", steps(sendChopped(1, 0, frag(gws.OpText, false, f1), wstest.Ping(pingP), frag(gws.OpContinuation, true, f2)), expectPong(pingP), expectText(both), closeNormally())},
		{"5.8 text in 2 fragments with a ping between, frame by frame", steps(sendEach(ms, frag(gws.OpText, false, f1), wstest.Ping(pingP), frag(gws.OpContinuation, true, f2)), expectPong(pingP), expectText(both), closeNormally())},
	}
	// 5.9-5.14: a continuation with nothing to continue.
	for i, fin := range []bool{true, false} {
		base := 9 + 3*i
		bad := []byte{}
		bad = append(bad, frag(gws.OpContinuation, fin, f1)...)
		rest := [][]byte{bad, frag(gws.OpText, false, f1), frag(gws.OpContinuation, true, f2)}
		cs = append(cs,
			confCase{fmt.Sprintf("5.%d continuation (FIN=%v) without a message", base, fin), steps(send(rest...), expectFail(1002))},
			confCase{fmt.Sprintf("5.%d continuation (FIN=%v) without a message, octet by octet", base+1, fin), steps(sendChopped(1, 0, rest...), expectFail(1002))},
			confCase{fmt.Sprintf("5.%d continuation (FIN=%v) without a message, frame by frame", base+2, fin), steps(sendEach(ms, rest...), expectFail(1002))},
		)
	}
	f3, f4 := []byte("fragment3"), []byte("fragment4")
	cs = append(cs,
		confCase{"5.15 text in 2 fragments, then a continuation and a text without a message", steps(
			send(frag(gws.OpText, false, f1), frag(gws.OpContinuation, true, f2), frag(gws.OpContinuation, false, f3), frag(gws.OpText, true, f4)),
			expectText(both), expectFail(1002))},
		confCase{"5.16 continuation (FIN=false) without a message, then a fragmented text, twice", steps(
			send(frag(gws.OpContinuation, false, f1), frag(gws.OpText, false, f2), frag(gws.OpContinuation, true, f3), frag(gws.OpContinuation, false, f1), frag(gws.OpText, false, f2), frag(gws.OpContinuation, true, f3)),
			expectFail(1002))},
		confCase{"5.17 continuation (FIN=true) without a message, then a fragmented text, twice", steps(
			send(frag(gws.OpContinuation, true, f1), frag(gws.OpText, false, f2), frag(gws.OpContinuation, true, f3), frag(gws.OpContinuation, true, f1), frag(gws.OpText, false, f2), frag(gws.OpContinuation, true, f3)),
			expectFail(1002))},
		confCase{"5.18 text in 2 fragments, both with opcode text", steps(send(frag(gws.OpText, false, f1), frag(gws.OpText, true, f2)), expectFail(1002))},
	)
	five := [][]byte{[]byte("fragment1"), []byte("fragment2"), []byte("fragment3"), []byte("fragment4"), []byte("fragment5")}
	p1, p2 := []byte("pongme 1!"), []byte("pongme 2!")
	seq := [][]byte{frag(gws.OpText, false, five[0]), frag(gws.OpContinuation, false, five[1]), wstest.Ping(p1), frag(gws.OpContinuation, false, five[2]), frag(gws.OpContinuation, false, five[3]), wstest.Ping(p2), frag(gws.OpContinuation, true, five[4])}
	all5 := bytes.Join(five, nil)
	cs = append(cs,
		confCase{"5.19 text in 5 fragments with 2 pings between, with pauses", steps(
			sendEach(ms, seq...), expectPong(p1), expectPong(p2), expectText(all5), closeNormally())},
		confCase{"5.20 text in 5 fragments with 2 pings between, octet by octet", steps(
			sendChopped(1, 0, seq...), expectPong(p1), expectPong(p2), expectText(all5), closeNormally())},
	)
	// [extra]
	b300 := wstest.Payload(300, 5)
	t300 := wstest.TextPayload(300)
	var pingEach []byte
	var pongEach []step
	for i := 0; i < 100; i++ {
		pingEach = append(pingEach, frag(map[bool]gws.OpCode{true: gws.OpBinary, false: gws.OpContinuation}[i == 0], i == 99, b300[3*i:3*i+3])...)
		pingEach = append(pingEach, wstest.Ping([]byte{byte(i)})...)
		pongEach = append(pongEach, expectPong([]byte{byte(i)}))
	}
	cs = append(cs,
		confCase{"5.21 [extra] binary in 2 fragments", steps(send(frag(gws.OpBinary, false, b300[:100]), frag(gws.OpContinuation, true, b300[100:])), expectBinary(b300), closeNormally())},
		confCase{"5.22 [extra] binary 300 bytes, 1 byte per fragment", steps(send(wstest.Fragments(gws.OpBinary, b300, 1)), expectBinary(b300), closeNormally())},
		confCase{"5.23 [extra] text 300 bytes, 1 byte per fragment", steps(send(wstest.Fragments(gws.OpText, t300, 1)), expectText(t300), closeNormally())},
		confCase{"5.24 [extra] text 300 bytes, 1 byte per fragment, octet by octet", steps(sendChopped(1, 0, wstest.Fragments(gws.OpText, t300, 1)), expectText(t300), closeNormally())},
		confCase{"5.25 [extra] binary in 100 fragments with a ping after each", steps(send(pingEach), pongEach[:99], expectBinary(b300), pongEach[99], closeNormally())},
		confCase{"5.26 [extra] text in 3 empty fragments", steps(send(frag(gws.OpText, false, nil), frag(gws.OpContinuation, false, nil), frag(gws.OpContinuation, true, nil)), expectText(nil), closeNormally())},
		confCase{"5.27 [extra] text: empty, payload, empty fragment", steps(send(frag(gws.OpText, false, nil), frag(gws.OpContinuation, false, f1), frag(gws.OpContinuation, true, nil)), expectText(f1), closeNormally())},
		confCase{"5.28 [extra] binary fragment then a binary frame", steps(send(frag(gws.OpBinary, false, f1), frag(gws.OpBinary, true, f2)), expectFail(1002))},
		confCase{"5.29 [extra] continuation after a complete message", steps(send(wstest.Text(f1), frag(gws.OpContinuation, true, f2)), expectText(f1), expectFail(1002))},
		confCase{"5.30 [extra] fragmented close", steps(send(wstest.Frame{Op: gws.OpClose, Payload: []byte{3, 0xe8}}.Bytes()), expectFail(1002))},
		confCase{"5.31 [extra] ping without FIN between fragments", steps(send(frag(gws.OpText, false, f1), wstest.Frame{Op: gws.OpPing, Payload: f2}.Bytes()), expectFail(1002))},
		confCase{"5.32 [extra] two fragmented messages back to back", steps(send(frag(gws.OpText, false, f1), frag(gws.OpContinuation, true, f2), frag(gws.OpBinary, false, f2), frag(gws.OpContinuation, true, f1)), expectText(both), expectBinary([]byte("fragment2fragment1")), closeNormally())},
		confCase{"5.33 [extra] fragment split mid-payload across reads, ping between", steps(sendEach(2*ms, append(wstest.Cut(frag(gws.OpBinary, false, b300), 150), wstest.Ping(f1), frag(gws.OpContinuation, true, f2))...), expectPong(f1), expectBinary(append(append([]byte{}, b300...), f2...)), closeNormally())},
	)
	return cs
}

// Section 7: the closing handshake.
func section7() []confCase {
	hw := []byte("Hello World!")
	r123 := strings.Repeat("*", 123)
	cs := []confCase{
		{"7.1.1 text, then close", steps(send(wstest.Text(hw)), expectText(hw), closeNormally())},
		{"7.1.2 close twice", steps(send(wstest.Close(1000, ""), wstest.Close(1000, "")), expectCloseEcho(1000))},
		{"7.1.3 close, then ping", steps(send(wstest.Close(1000, ""), wstest.Ping(hw)), expectCloseEcho(1000))},
		{"7.1.4 close, then text", steps(send(wstest.Close(1000, ""), wstest.Text(hw)), expectCloseEcho(1000))},
		{"7.1.5 first fragment, close, last fragment", steps(send(wstest.Data(gws.OpText, false, []byte("fragment1")), wstest.Close(1000, ""), wstest.Data(gws.OpContinuation, true, []byte("fragment2"))), expectCloseEcho(1000))},
		{"7.1.6 256 KiB message, close, ping", steps(send(wstest.Binary(wstest.Payload(256<<10, 7)), wstest.Close(1000, ""), wstest.Ping(hw)), expectBinary(wstest.Payload(256<<10, 7)), expectCloseEcho(1000))},
		{"7.3.1 close with empty payload", steps(send(wstest.Close(-1, "")), expectCloseEcho(-1))},
		{"7.3.2 close with 1-byte payload", steps(send(wstest.Frame{Fin: true, Op: gws.OpClose, Payload: []byte{0x03}}.Bytes()), expectFail(1002))},
		{"7.3.3 close with code 1000", steps(send(wstest.Close(1000, "")), expectCloseEcho(1000))},
		{"7.3.4 close with code 1000 and a reason", steps(send(wstest.Close(1000, "Hello World!")), expectCloseEcho(1000))},
		{"7.3.5 close with code 1000 and a 123-byte reason", steps(send(wstest.Close(1000, r123)), expectCloseEcho(1000))},
		{"7.3.6 close with code 1000 and a 124-byte reason", steps(send(wstest.Close(1000, r123+"*")), expectFail(1002))},
		{"7.5.1 close with an invalid UTF-8 reason", steps(send(wstest.Close(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")), expectFail(1007))},
	}
	valid := []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013, 1014}
	for i, code := range valid {
		name := fmt.Sprintf("7.7.%d close with valid code %d", i+1, code)
		if i >= 13 {
			name = fmt.Sprintf("7.7.%d [extra] close with valid code %d", i+1, code)
		}
		cs = append(cs, confCase{name, steps(send(wstest.Close(code, "")), expectCloseEcho(code))})
	}
	invalid := []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999}
	for i, code := range invalid {
		cs = append(cs, confCase{fmt.Sprintf("7.9.%d close with invalid code %d", i+1, code), steps(send(wstest.Close(code, "")), expectFail(1002))})
	}
	cs = append(cs,
		confCase{"7.9.10 [extra] close with invalid code 1015", steps(send(wstest.Close(1015, "")), expectFail(1002))},
		confCase{"7.13.1 close with code 5000", steps(send(wstest.Close(5000, "")), expectFail(1002))},
		confCase{"7.13.2 close with code 65535", steps(send(wstest.Close(65535, "")), expectFail(1002))},
	)
	// [extra]
	for i, code := range []int{1000, 1001, 3000, 4999} {
		cs = append(cs, confCase{fmt.Sprintf("7.14.%d [extra] close %d with a UTF-8 reason", i+1, code),
			steps(send(wstest.Close(code, "κόσμε 𝄞 bye")), expectCloseEcho(code))})
	}
	for i, code := range []int{2999, 5000} {
		cs = append(cs, confCase{fmt.Sprintf("7.14.%d [extra] close %d with a reason", i+5, code),
			steps(send(wstest.Close(code, "bye")), expectFail(1002))})
	}
	cs = append(cs,
		confCase{"7.14.7 [extra] close reason with a truncated code point", steps(send(wstest.Close(1000, "ab\xce")), expectFail(1007))},
		confCase{"7.14.8 [extra] close written 1 byte at a time", steps(sendChopped(1, ms/4, wstest.Close(1001, "going")), expectCloseEcho(1001))},
		confCase{"7.14.9 [extra] close inside a fragmented binary message", steps(send(wstest.Data(gws.OpBinary, false, wstest.Payload(10, 1)), wstest.Close(3000, "")), expectCloseEcho(3000))},
	)
	cl := wstest.Close(1000, "")
	cs = append(cs, confCase{"7.14.10 [extra] binary payload that looks like a close frame", steps(send(wstest.Binary(cl)), expectBinary(cl), closeNormally())})
	cs = append(cs,
		confCase{"7.14.11 [extra] text, close, text in one write", steps(send(wstest.Text(hw), wstest.Close(1000, ""), wstest.Text(hw)), expectText(hw), expectCloseEcho(1000))},
		confCase{"7.14.12 [extra] data after close is ignored even if invalid", steps(send(wstest.Close(1000, ""), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0}), expectCloseEcho(1000))},
	)
	return cs
}

// sectionFraming is our own section F: frame-length encodings and masking.
func sectionFraming() []confCase {
	p5 := []byte("short")
	p200 := wstest.Payload(200, 9)
	p70k := wstest.Payload(70000, 10)
	return []confCase{
		{"F.1 5 bytes with a 16-bit length (not minimal, accepted)", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: p5, LenBits: 16}.Bytes()), expectBinary(p5), closeNormally())},
		{"F.2 5 bytes with a 64-bit length (not minimal, accepted)", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: p5, LenBits: 64}.Bytes()), expectBinary(p5), closeNormally())},
		{"F.3 200 bytes with a 64-bit length (not minimal, accepted)", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: p200, LenBits: 64}.Bytes()), expectBinary(p200), closeNormally())},
		{"F.4 70000 bytes with a 64-bit length", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: p70k}.Bytes()), expectBinary(p70k), closeNormally())},
		{"F.5 64-bit length with the most significant bit set", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, RawLen: true, Length: 1<<63 | 5}.Bytes()), expectFail(1002))},
		{"F.6 64-bit length 0xffffffffffffffff", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, RawLen: true, Length: ^uint64(0)}.Bytes()), expectFail(1002))},
		{"F.7 64-bit length 2^62 (over the frame limit)", steps(send(wstest.Frame{Fin: true, Op: gws.OpBinary, RawLen: true, Length: 1 << 62}.Bytes()), expectFail(1009))},
		{"F.8 unmasked text frame", steps(send(wstest.Frame{Fin: true, Op: gws.OpText, Payload: p5, Unmasked: true}.Bytes()), expectFail(1002))},
		{"F.9 unmasked binary frame after a good one", steps(send(wstest.Binary(p5), wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: p5, Unmasked: true}.Bytes()), expectBinary(p5), expectFail(1002))},
		{"F.10 unmasked ping", steps(send(wstest.Frame{Fin: true, Op: gws.OpPing, Payload: p5, Unmasked: true}.Bytes()), expectFail(1002))},
		{"F.11 unmasked close", steps(send(wstest.Frame{Fin: true, Op: gws.OpClose, Payload: []byte{3, 0xe8}, Unmasked: true}.Bytes()), expectFail(1002))},
		{"F.12 unmasked continuation", steps(send(wstest.Data(gws.OpText, false, p5), wstest.Frame{Fin: true, Op: gws.OpContinuation, Payload: p5, Unmasked: true}.Bytes()), expectFail(1002))},
		{"F.13 ping with a 16-bit length of 5", steps(send(wstest.Frame{Fin: true, Op: gws.OpPing, Payload: p5, LenBits: 16}.Bytes()), expectFail(1002))},
		{"F.14 close with a 64-bit length of 2", steps(send(wstest.Frame{Fin: true, Op: gws.OpClose, Payload: []byte{3, 0xe8}, LenBits: 64}.Bytes()), expectFail(1002))},
		{"F.15 empty text with a 64-bit length", steps(send(wstest.Frame{Fin: true, Op: gws.OpText, LenBits: 64}.Bytes()), expectText(nil), closeNormally())},
		{"F.16 65535 bytes (largest 16-bit length) split in the length field", steps(sendEach(2*ms, wstest.Cut(wstest.Binary(wstest.Payload(65535, 4)), 3)...), expectBinary(wstest.Payload(65535, 4)), closeNormally())},
	}
}
