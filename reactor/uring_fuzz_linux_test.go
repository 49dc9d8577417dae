//go:build !noreactor

package reactor

import (
	"bytes"
	"log/slog"
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/ring"
	"github.com/hioload-ws/hioload-ws/internal/uring"
)

// FuzzURingCompletions drives the io_uring engine's completion handling
// with a fake ring (uring.NewFake): the test plays the kernel, and the
// fuzzer decides what the kernel does. Peers send bytes that arrive in
// pieces of any size into the provided buffers, run the ring dry
// (ENOBUFS), hang up or fail; sends go out whole, short or not at all
// (EAGAIN) or fail; drains complete whole or in part, or stay pending;
// the application writes from its own memory, closes gracefully or aborts
// connections whose sends are in flight. Whatever happens:
//
//   - each connection's handler sees the peer's bytes in order, none lost
//     or repeated while the connection is open;
//   - what the kernel sent is a prefix of what the handler wrote, in order;
//   - no SQE names a connection's descriptor after its close;
//   - at the end every slot is retired, every epoch ended and every pool
//     buffer back.
func FuzzURingCompletions(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 1, 40, 4, 0, 4, 0},                        // open, data, turns
		{0, 0, 1, 200, 1, 100, 4, 1, 4, 2, 4, 0},      // two connections, short send
		{0, 1, 255, 1, 255, 1, 255, 4, 3, 5, 0, 4, 0}, // much data, EAGAIN, drain
		{0, 6, 0, 1, 30, 4, 0, 7, 0, 4, 0},            // app write, graceful close
		{0, 1, 60, 8, 0, 4, 0, 2, 0, 4, 0},            // abort with a send in flight
		{0, 9, 1, 90, 4, 0, 3, 0, 4, 0},               // ENOBUFS then EOF
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		w := newFakeWorld(t)
		defer w.close()
		// The input's length picks the receives' limit: a small one, one
		// the kernel refuses (EINVAL: the engine arms without), or none.
		switch len(ops) % 3 {
		case 0:
			w.u.recvLimit = 700
		case 1:
			w.u.recvLimit, w.refuseLimit = 700, true
		case 2:
			w.u.recvLimit = 0
		}
		for i := 0; i+1 < len(ops) && i < 400; i += 2 {
			w.step(ops[i], ops[i+1])
		}
		w.finish()
	})
}

// fakeWorld is a loop with an io_uring engine over a fake ring, the
// connections' peers, and the kernel's side of things.
type fakeWorld struct {
	t           *testing.T
	l           *Loop
	u           *uringEngine
	pool        *hugepage.Pool
	conns       []*fakeConn
	drains      []fakeDrain // drains the kernel holds
	sendOutcome byte        // how the kernel treats the next sends
	seq         byte
	refuseLimit bool // the kernel fails a receive with a limit (before 6.17)
}

type fakeConn struct {
	c      *Conn
	gen    uint32
	fd     int
	peer   int
	in     []byte // what the peer sent
	fed    int    // bytes of in received into buffers
	armed  bool   // a multishot receive is in the kernel
	limit  int    // the receive's limit (0: none)
	took   int    // bytes the receive took
	closed bool   // the kernel closed the descriptor
	gone   bool   // the peer hung up or failed
	got    []byte // what the handler was given
	wrote  []byte // what the handler wrote
	out    []byte // what the kernel sent
}

type fakeDrain struct {
	fc *fakeConn
	ud uint64
	b  []byte
}

// fakeHandler echoes in place, and records.
type fakeHandler struct{ w *fakeWorld }

func (h *fakeHandler) OnOpen(c *Conn) {}
func (h *fakeHandler) OnRead(c *Conn, data []byte) int {
	fc := h.w.byConn(c)
	fc.got = append(fc.got, data...)
	fc.wrote = append(fc.wrote, data...)
	c.Write(data) // zero-copy echo from the provided buffer
	return len(data)
}
func (h *fakeHandler) OnTask(c *Conn, t *Task)    {}
func (h *fakeHandler) OnShutdown(c *Conn)         { c.CloseGracefully() }
func (h *fakeHandler) OnDeadline(c *Conn)         {}
func (h *fakeHandler) OnClose(c *Conn, err error) {}
func (h *fakeHandler) OnEvict(c *Conn, why error) {}

// fakePool is shared by the fuzzer's runs (a pool per run would make
// mapping and faulting it in most of a run's time): every run must give
// back every buffer, so each starts from an empty pool.
var fakePool struct {
	once sync.Once
	p    *hugepage.Pool
	err  error
}

func newFakeWorld(t *testing.T) *fakeWorld {
	w := &fakeWorld{t: t}
	fakePool.once.Do(func() {
		ringClass := LoopBuffers(IOURing)
		fakePool.p, fakePool.err = hugepage.New(hugepage.Config{Node: -1, NoHugetlb: true, NoTHP: true,
			Classes: []hugepage.Class{{Size: 64, Count: 256}, {Size: 4096, Count: 64}, {Size: ringClass.Size, Count: ringClass.Count + 8}, {Size: 128 << 10, Count: 2}}})
	})
	if fakePool.err != nil {
		t.Fatal(fakePool.err)
	}
	w.pool = fakePool.p
	if n := w.pool.InUse(); n != 0 {
		t.Fatalf("%d pool buffers out before the run", n)
	}
	cfg := Config{LingerTimeout: 1e9, MaxHeapBytes: 1 << 20}
	cfg.setDefaults()
	e := &Engine{cfg: cfg, log: slog.New(slog.DiscardHandler), io: IOURing}
	h := &fakeHandler{w: w}
	e.h = h
	l := &Loop{e: e, h: h, log: e.log, inbox: ring.NewMPMC[Task](16), scratch: make([]byte, 16<<10)}
	l.batch.Store(32)
	l.p.lfd, l.p.efd = -1, -1
	l.cache = w.pool.NewCache()
	u := &uringEngine{}
	if err := u.openRing(l, uring.NewFake(uringSQ, uringCQ)); err != nil {
		t.Fatal(err)
	}
	l.p.eng = u
	l.newReadBuffer()
	if err := u.start(l); err != nil {
		t.Fatal(err)
	}
	w.l, w.u = l, u
	return w
}

func (w *fakeWorld) byConn(c *Conn) *fakeConn {
	for _, fc := range w.conns {
		if fc.c == c {
			return fc
		}
	}
	w.t.Fatalf("no fake connection for slot %d", c.slot)
	return nil
}

// conn picks a connection by the fuzzer's byte, nil when there is none.
func (w *fakeWorld) conn(b byte) *fakeConn {
	if len(w.conns) == 0 {
		return nil
	}
	return w.conns[int(b)%len(w.conns)]
}

func (w *fakeWorld) step(op, arg byte) {
	switch op % 10 {
	case 0: // a connection arrives
		if len(w.conns) < 8 {
			w.open()
		}
	case 1: // its peer sends arg*7+1 bytes
		if fc := w.conn(arg); fc != nil && !fc.gone {
			for range int(arg)*7 + 1 {
				w.seq++
				fc.in = append(fc.in, w.seq)
			}
		}
	case 2: // the peer hangs up
		if fc := w.conn(arg); fc != nil {
			fc.gone = true
		}
	case 3: // how the kernel treats sends from now on
		w.sendOutcome = arg
	case 4: // a turn
		w.turn()
	case 5: // the kernel completes a pending drain
		w.completeDrain(arg)
	case 6: // the application writes from its own memory
		if fc := w.conn(arg); fc != nil && !fc.c.Closed() {
			p := bytes.Repeat([]byte{arg}, int(arg)+1)
			fc.c.Write(p)
			if fc.c.flags&(fClosing|fWriteShut) == 0 {
				fc.wrote = append(fc.wrote, p...)
			}
			fc.c.Flush()
		}
	case 7: // graceful close
		if fc := w.conn(arg); fc != nil {
			fc.c.CloseGracefully()
		}
	case 8: // abort, whatever is in flight
		if fc := w.conn(arg); fc != nil {
			fc.c.Abort(ErrShutdown)
		}
	case 9: // the ring runs dry: take every buffer the kernel has
		for {
			if _, _, ok := w.u.br.FakeRecv(make([]byte, 1<<20)); !ok {
				break
			}
		}
	}
}

func (w *fakeWorld) open() {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	before := len(w.l.conns)
	w.l.open(fds[0], w.l.admit(netip.AddrPort{}))
	var c *Conn
	for _, x := range w.l.conns {
		if x != nil && int(x.fd) == fds[0] && x.flags&fClosed == 0 {
			c = x
		}
	}
	if c == nil {
		w.t.Fatalf("open: no connection (table %d -> %d)", before, len(w.l.conns))
	}
	w.conns = append(w.conns, &fakeConn{c: c, gen: c.gen, fd: fds[0], peer: fds[1]})
}

// turn is one poll of the loop with the fake kernel in the enter.
func (w *fakeWorld) turn() {
	u, l := w.u, w.l
	u.prepare(l)
	u.ring.SubmitAndWait(0, 0, uring.RawWait)
	w.kernel(u.ring.TakeSubmitted())
	u.reap(l)
}

// kernel plays the kernel for the SQEs an enter took, then receives what
// the peers sent into the provided buffers.
func (w *fakeWorld) kernel(sqes []uring.SQE) {
	for i := 0; i < len(sqes); i++ {
		s := &sqes[i]
		op := s.UserData >> 56
		fc := w.sqeConn(s)
		if fc != nil && s.Opcode != uring.OpNop && (fc.closed || int(s.Fd) != fc.fd) {
			w.t.Fatalf("SQE opcode %d on descriptor %d of a connection closed %v (descriptor %d)", s.Opcode, s.Fd, fc.closed, fc.fd)
		}
		switch {
		case s.Opcode == uring.OpNop:
			w.post(s.UserData, 0, 0)
		case s.Opcode == uring.OpRecv && w.refuseLimit && s.FileIndex != 0:
			w.post(s.UserData, -int32(unix.EINVAL), 0)
		case s.Opcode == uring.OpRecv:
			fc.armed, fc.limit, fc.took = true, int(s.FileIndex), 0
		case op == udSend:
			w.sendSQE(fc, s)
		case op == udDrain:
			b := fc.c.io.flight.b
			w.drains = append(w.drains, fakeDrain{fc: fc, ud: s.UserData, b: b[:s.Len]})
		case s.Opcode == uring.OpAsyncCancel && op == udCancel:
			n := 0
			if fc.armed {
				fc.armed = false
				w.post(uringOp(udRecv, fc.c), -int32(unix.ECANCELED), 0)
				n++
			}
			for k := 0; k < len(w.drains); k++ {
				if w.drains[k].fc == fc {
					w.post(w.drains[k].ud, -int32(unix.ECANCELED), 0)
					w.drains = append(w.drains[:k], w.drains[k+1:]...)
					k--
					n++
				}
			}
			w.post(s.UserData, int32(n), 0)
		case s.Opcode == uring.OpClose && op == udClose:
			fc.closed = true
			unix.Close(fc.fd)
			w.post(s.UserData, 0, 0)
		case s.Opcode == uring.OpRead && op == udWake:
			// the eventfd read stays pending until settle cancels it
		case s.Opcode == uring.OpAsyncCancel && s.Addr == udWake<<56:
			w.post(udWake<<56, -int32(unix.ECANCELED), 0)
			w.post(s.UserData, 0, 0)
		default:
			w.t.Fatalf("unexpected SQE: opcode %d, user data %#x", s.Opcode, s.UserData)
		}
	}
	for _, fc := range w.conns {
		w.receive(fc)
	}
}

// sqeConn finds the connection an SQE is for, by its user data.
func (w *fakeWorld) sqeConn(s *uring.SQE) *fakeConn {
	var c *Conn
	switch op := s.UserData >> 56; op {
	case udSend:
		seq, idx := uint32(s.UserData>>32)&0xffffff, uint32(s.UserData)
		for _, e := range w.u.flying {
			if e.seq == seq && int(idx) < len(e.recs) {
				c = e.recs[idx].c
			}
		}
	case udRecv, udDrain, udCancel, udClose, udNop:
		slot, gen := uint32(s.UserData), uint32(s.UserData>>32)&0xffffff
		for _, fc := range w.conns {
			if fc.c.slot == slot && fc.gen&0xffffff == gen {
				return fc
			}
		}
		return nil
	}
	for _, fc := range w.conns {
		if c != nil && fc.c == c {
			return fc
		}
	}
	return nil
}

func (w *fakeWorld) post(ud uint64, res int32, flags uint32) {
	if !w.u.ring.Post(uring.CQE{UserData: ud, Res: res, Flags: flags}) {
		w.t.Fatal("fake CQ full")
	}
}

// sendSQE plays a turn's send: whole, short, EAGAIN or EPIPE as the
// fuzzer said.
func (w *fakeWorld) sendSQE(fc *fakeConn, s *uring.SQE) {
	seq, idx := uint32(s.UserData>>32)&0xffffff, uint32(s.UserData)
	var e *epoch
	for _, f := range w.u.flying {
		if f.seq == seq {
			e = f
		}
	}
	if e == nil || int(idx) >= len(e.recs) || e.recs[idx].c != fc.c {
		w.t.Fatalf("send SQE for an unknown record %d of epoch %d", idx, seq)
	}
	r := &e.recs[idx]
	var all []byte
	for _, b := range e.out[r.first : r.first+r.n] {
		all = append(all, b...)
	}
	if len(all) != r.bytes {
		w.t.Fatalf("record of %d bytes holds %d", r.bytes, len(all))
	}
	switch w.sendOutcome % 4 {
	case 0, 3: // whole
		fc.out = append(fc.out, all...)
		if s.Flags&uring.SQECQESkip == 0 {
			w.post(s.UserData, int32(len(all)), 0)
		}
	case 1: // short
		k := int(w.sendOutcome) % len(all)
		fc.out = append(fc.out, all[:k]...)
		if k == 0 {
			w.post(s.UserData, -int32(unix.EAGAIN), 0)
		} else {
			w.post(s.UserData, int32(k), 0)
		}
	case 2:
		if w.sendOutcome%8 == 2 {
			w.post(s.UserData, -int32(unix.EAGAIN), 0)
		} else {
			w.post(s.UserData, -int32(unix.EPIPE), 0)
		}
	}
}

func (w *fakeWorld) completeDrain(arg byte) {
	if len(w.drains) == 0 {
		return
	}
	i := int(arg) % len(w.drains)
	d := w.drains[i]
	w.drains = append(w.drains[:i], w.drains[i+1:]...)
	n := len(d.b)
	if arg%3 == 1 {
		n = int(arg) % len(d.b)
	}
	d.fc.out = append(d.fc.out, d.b[:n]...)
	w.post(d.ud, int32(n), 0)
}

// receive plays an armed multishot receive: the peer's bytes go into the
// provided buffers in pieces; a dry ring ends it with ENOBUFS; a peer that
// hung up gets EOF once its bytes are in.
func (w *fakeWorld) receive(fc *fakeConn) {
	for fc.armed && fc.fed < len(fc.in) {
		chunk := fc.in[fc.fed:min(len(fc.in), fc.fed+1+int(fc.in[fc.fed])*3)]
		n, flags, ok := w.u.br.FakeRecv(chunk)
		if !ok {
			fc.armed = false
			w.post(uringOp(udRecv, fc.c), -int32(unix.ENOBUFS), 0)
			return
		}
		fc.fed += n
		if fc.took += n; fc.limit > 0 && fc.took >= fc.limit {
			fc.armed = false // the limit ends it: its last CQE has bytes
			w.post(uringOp(udRecv, fc.c), int32(n), flags)
			return
		}
		w.post(uringOp(udRecv, fc.c), int32(n), flags|uring.CQEFMore)
	}
	if fc.armed && fc.gone && fc.fed == len(fc.in) {
		fc.armed = false
		w.post(uringOp(udRecv, fc.c), 0, 0)
	}
}

// finish closes everything, lets the kernel answer, and checks.
func (w *fakeWorld) finish() {
	t, l, u := w.t, w.l, w.u
	l.stopping = true
	l.closeAll(ErrShutdown)
	for range 20 {
		for len(w.drains) > 0 {
			w.completeDrain(0)
		}
		w.turn()
	}
	for _, fc := range w.conns {
		if !bytes.Equal(fc.got, fc.in[:len(fc.got)]) {
			t.Fatalf("conn %d: the handler got %d bytes that are not the peer's %d, in order", fc.fd, len(fc.got), len(fc.in))
		}
		if !bytes.HasPrefix(fc.wrote, fc.out) {
			t.Fatalf("conn %d: the kernel sent %d bytes that are not a prefix of the %d written:\nsent  %x\nwrote %x", fc.fd, len(fc.out), len(fc.wrote), fc.out, fc.wrote)
		}
		if !fc.closed {
			t.Fatalf("conn %d: descriptor never closed", fc.fd)
		}
		if fc.c.p.ops != 0 {
			t.Fatalf("conn %d: %d operations still counted", fc.fd, fc.c.p.ops)
		}
	}
	for slot, c := range l.conns {
		if c != nil {
			t.Fatalf("slot %d still taken (ops %d, state %#x)", slot, c.p.ops, c.p.state)
		}
	}
	if len(u.flying) != 0 || len(u.building.recs) != 0 {
		t.Fatalf("epochs left: %d flying, %d sends building", len(u.flying), len(u.building.recs))
	}
	u.settle(l)
	for range 3 {
		w.turn() // the wakeup read's cancel
	}
	u.close(l)
	l.freeMemory()
	if n := w.pool.InUse(); n != 0 {
		t.Fatalf("%d pool buffers still out", n)
	}
}

func (w *fakeWorld) close() {
	for _, fc := range w.conns {
		unix.Close(fc.peer)
		if !fc.closed {
			unix.Close(fc.fd)
		}
	}
}

// limitedWorld is a fake world with n connections open whose receives
// end after limit bytes.
func limitedWorld(t *testing.T, n int, limit uint32) *fakeWorld {
	w := newFakeWorld(t)
	t.Cleanup(w.close)
	w.u.recvLimit = limit
	for range n {
		w.open()
	}
	return w
}

// TestURingLimitRefused: on a kernel that refuses a receive's limit
// (before 6.17), every receive armed with it fails with EINVAL, and each
// connection is armed again without it, none closed and no byte lost.
func TestURingLimitRefused(t *testing.T) {
	w := limitedWorld(t, 3, uringRecvLimit)
	w.refuseLimit = true
	for i := range 3 {
		w.step(1, byte(i)) // each peer sends
	}
	for range 4 {
		w.turn()
	}
	if w.u.recvLimit != 0 {
		t.Fatalf("the engine still arms receives with a limit of %d", w.u.recvLimit)
	}
	for _, fc := range w.conns {
		if fc.c.Closed() || !fc.armed || !bytes.Equal(fc.got, fc.in) {
			t.Fatalf("conn %d: closed %v, armed %v, got %d of %d bytes; want open, armed and all", fc.fd, fc.c.Closed(), fc.armed, len(fc.got), len(fc.in))
		}
	}
	w.finish()
}

// TestURingLimitEndsReceive: a receive that took its limit ends and is
// armed again at the next turn, so a peer that sends more than a turn's
// share gets it all through, in order, one share a turn.
func TestURingLimitEndsReceive(t *testing.T) {
	w := limitedWorld(t, 1, 700)
	fc := w.conns[0]
	for range 3 {
		w.step(1, 255) // 1,786 bytes each
	}
	for turns := 0; len(fc.got) < len(fc.in); turns++ {
		if turns == 20 {
			t.Fatalf("after %d turns the handler got %d of %d bytes", turns, len(fc.got), len(fc.in))
		}
		before := len(fc.got)
		w.turn()
		// A share is 700 bytes, and the receive that reaches it takes
		// what its buffer gives (a fake chunk: at most 766 bytes).
		if n := len(fc.got) - before; n == 0 || n > 700+766 {
			t.Fatalf("turn %d delivered %d bytes; want a share: more than none, about 700", turns, n)
		}
	}
	if !bytes.Equal(fc.got, fc.in) {
		t.Fatalf("got %d bytes, not the %d sent in order", len(fc.got), len(fc.in))
	}
	w.finish()
}

// TestURingRearmWithoutSQE: receives to arm again that find no SQE (the
// kernel took none: a full SQ it would not accept) stay on the list, all
// of them, and are armed once it takes SQEs again. (The first of them used
// to be blanked before its arm failed: that connection was never armed
// again, and the next attempt dereferenced the blank.)
func TestURingRearmWithoutSQE(t *testing.T) {
	w := limitedWorld(t, 3, 700)
	for i := range 3 {
		w.step(1, byte(200+i)) // each sends more than its share (1,401 bytes and up)
	}
	w.turn()
	u, l := w.u, w.l
	if len(u.rearm) != 3 {
		t.Fatalf("%d receives to arm again after the limit ended them, want 3", len(u.rearm))
	}
	u.ring.FakeStall(true)
	for u.ring.GetSQE() != nil { // the SQ is full and the kernel takes none
	}
	u.armReceives(l)
	if len(u.rearm) != 3 {
		t.Fatalf("after arms that found no SQE: %d on the list, want 3", len(u.rearm))
	}
	for _, r := range u.rearm {
		if r.c == nil {
			t.Fatal("a blank entry on the list")
		}
	}
	u.armReceives(l) // must not fault on the list
	u.ring.FakeStall(false)
	u.ring.SubmitAndWait(0, 0, uring.RawWait)
	u.ring.TakeSubmitted() // the filler, never prepared: zero SQEs
	for range 20 {
		w.turn()
	}
	for _, fc := range w.conns {
		if !bytes.Equal(fc.got, fc.in) {
			t.Fatalf("conn %d: got %d of %d bytes", fc.fd, len(fc.got), len(fc.in))
		}
	}
	w.finish()
}

// TestURingLimitTrustedOnceItWorks: once a receive armed with the limit
// has brought bytes, the kernel takes the limit, and a later EINVAL is an
// error of that connection (closed), not a reason to drop the limit.
func TestURingLimitTrustedOnceItWorks(t *testing.T) {
	w := limitedWorld(t, 1, 700)
	w.step(1, 200) // 1,401 bytes: the limit ends the receive
	w.turn()
	fc := w.conns[0]
	if len(fc.got) == 0 || !w.u.limitWorks {
		t.Fatalf("a limited receive brought %d bytes, limitWorks %v", len(fc.got), w.u.limitWorks)
	}
	w.refuseLimit = true // the re-arm fails with EINVAL
	w.turn()
	w.turn()
	if w.u.recvLimit != 700 || !fc.c.Closed() {
		t.Fatalf("after an EINVAL: limit %d, connection closed %v; want 700 and closed", w.u.recvLimit, fc.c.Closed())
	}
	w.finish()
}
