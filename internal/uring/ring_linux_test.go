package uring

import (
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newRing makes a ring for a test, or skips when the kernel refuses
// io_uring (io_uring_disabled, a seccomp profile, an old kernel): the
// reactor's tests check that its engine falls back in that case.
//
// A single-issuer ring that is not created disabled belongs to the thread
// that made it: io_uring_enter from any other fails with EEXIST. The test
// goroutine is locked to its thread for the test's life, as the reactor's
// loops are, or the Go scheduler may move it between two calls.
func newRing(t *testing.T, entries uint32, p *Params) *Ring {
	t.Helper()
	if p != nil && p.Flags&SetupSingleIssuer != 0 && p.Flags&SetupRDisabled == 0 {
		runtime.LockOSThread()
		t.Cleanup(runtime.UnlockOSThread)
	}
	r, err := New(entries, p)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// reap waits for n completions and returns copies of them, in order.
func reap(t *testing.T, r *Ring, n int) []CQE {
	t.Helper()
	var out []CQE
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d completions: %+v", len(out), n, out)
		}
		if _, err := r.SubmitAndWait(1, 100*time.Millisecond, SyscallWait); err != nil {
			t.Fatal(err)
		}
		k := r.Ready()
		for i := range k {
			out = append(out, *r.CQE(i))
		}
		r.Advance(k)
	}
	return out
}

func TestRingMapping(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
	}{
		{"plain", 0},
		{"no-sqarray", SetupNoSQArray},
		{"defer-taskrun", SetupSingleIssuer | SetupDeferTaskrun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Params{Flags: tc.flags | SetupCQSize | SetupSubmitAll, CQEntries: 64}
			r := newRing(t, 8, &p)
			if r.SQEntries() != 8 || r.CQEntries() != 64 {
				t.Fatalf("sizes %d/%d, want 8/64", r.SQEntries(), r.CQEntries())
			}
			// Three rounds fill the SQ exactly, so the indexes wrap.
			for round := range 3 {
				for i := range 8 {
					sqe := r.GetSQE()
					if sqe == nil {
						t.Fatalf("round %d: SQ full after %d SQEs", round, i)
					}
					sqe.PrepNop(uint64(round*100 + i))
				}
				if r.GetSQE() != nil {
					t.Fatal("GetSQE past the SQ's size")
				}
				if r.Pending() != 8 {
					t.Fatalf("pending %d, want 8", r.Pending())
				}
				cqes := reap(t, r, 8)
				for i, c := range cqes {
					if c.UserData != uint64(round*100+i) || c.Res != 0 {
						t.Fatalf("round %d: completion %d = %+v", round, i, c)
					}
				}
				if r.Pending() != 0 || r.Ready() != 0 {
					t.Fatalf("pending %d, ready %d after reaping", r.Pending(), r.Ready())
				}
			}
		})
	}
}

func TestCQOverflowKeepsCompletions(t *testing.T) {
	p := Params{Flags: SetupCQSize, CQEntries: 8}
	r := newRing(t, 8, &p)
	// 24 NOPs into a CQ of 8: the kernel keeps the rest (FEAT_NODROP) and
	// hands them over as room appears.
	for i := range 24 {
		sqe := r.GetSQE()
		if sqe == nil {
			if _, err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			sqe = r.GetSQE()
		}
		sqe.PrepNop(uint64(i))
	}
	cqes := reap(t, r, 24)
	for i, c := range cqes {
		if c.UserData != uint64(i) {
			t.Fatalf("completion %d has user data %d: order lost", i, c.UserData)
		}
	}
}

// TestWaitTimeout waits on an idle ring: each wait ends at its timeout or
// earlier, when a signal interrupts it (the Go runtime preempts a goroutine
// that has run 10 ms, and a raw wait counts as running), never with an
// error and never spinning.
func TestWaitTimeout(t *testing.T) {
	for _, how := range []Wait{SyscallWait, RawWait} {
		r := newRing(t, 4, nil)
		start := time.Now()
		waits := 0
		for time.Since(start) < 50*time.Millisecond {
			if _, err := r.SubmitAndWait(1, 20*time.Millisecond, how); err != nil {
				t.Fatal(err)
			}
			waits++
		}
		if r.Ready() != 0 || waits > 20 {
			t.Fatalf("wait %d: %d waits in 50ms with %d ready; want a few and none", how, waits, r.Ready())
		}
	}
}

func TestProbe(t *testing.T) {
	r := newRing(t, 4, nil)
	p, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []uint8{OpNop, OpSendmsg, OpAccept, OpAsyncCancel, OpClose, OpRead, OpSend, OpRecv} {
		if !p.Supports(op) {
			t.Errorf("opcode %d not supported by a kernel with io_uring", op)
		}
	}
	if p.Supports(255) {
		t.Error("opcode 255 reported supported")
	}
}

// TestSingleIssuer makes a disabled ring on one thread and enables it on
// another, as the reactor does (New runs on the caller's goroutine, the
// loop on its own thread), then registers the ring fd there.
func TestSingleIssuer(t *testing.T) {
	p := Params{Flags: SetupRDisabled | SetupSingleIssuer | SetupDeferTaskrun}
	r := newRing(t, 4, &p)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		done <- func() error {
			if err := r.Enable(); err != nil {
				return err
			}
			if err := r.RegisterRingFD(); err != nil {
				return err
			}
			defer r.UnregisterRingFD()
			r.GetSQE().PrepNop(7)
			if _, err := r.SubmitAndWait(1, time.Second, RawWait); err != nil {
				return err
			}
			if r.Ready() != 1 || r.CQE(0).UserData != 7 {
				return errors.New("no completion for the NOP")
			}
			r.Advance(1)
			return nil
		}()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// tcpPair returns a connected pair of TCP sockets: ours as a raw
// non-blocking descriptor accepted with accept4(2), as the reactor accepts
// (Go's own listeners may be MPTCP, which has no zero-copy send), and the
// peer as a net.Conn.
func tcpPair(t *testing.T) (int, net.Conn) {
	t.Helper()
	lfd, addr := listener(t)
	peer, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	var fd int
	for range 100 {
		if fd, _, err = unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC); err != unix.EAGAIN {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, peer
}

func TestSendAndSendmsg(t *testing.T) {
	r := newRing(t, 8, nil)
	fd, peer := tcpPair(t)
	a, b, c := []byte("hello "), []byte("gathered "), []byte("world")
	r.GetSQE().PrepSend(fd, a, 0, 1)
	iov := []unix.Iovec{{Base: &b[0]}, {Base: &c[0]}}
	iov[0].SetLen(len(b))
	iov[1].SetLen(len(c))
	msg := unix.Msghdr{Iov: &iov[0]}
	msg.SetIovlen(len(iov))
	r.GetSQE().PrepSendmsg(fd, &msg, unix.MSG_DONTWAIT, 2)
	cqes := reap(t, r, 2)
	runtime.KeepAlive(iov)
	if cqes[0].Res != int32(len(a)) || cqes[1].Res != int32(len(b)+len(c)) {
		t.Fatalf("sends: %+v", cqes)
	}
	got := make([]byte, 64)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n := 0
	for n < len(a)+len(b)+len(c) {
		k, err := peer.Read(got[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	if string(got[:n]) != "hello gathered world" {
		t.Fatalf("peer read %q", got[:n])
	}
}

// TestSendDontwaitWouldBlock fills the socket: a MSG_DONTWAIT send then
// completes at once, short or with -EAGAIN, rather than waiting for room,
// so the bytes it did not take are known at the completion.
func TestSendDontwaitWouldBlock(t *testing.T) {
	r := newRing(t, 8, nil)
	fd, _ := tcpPair(t)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	big := make([]byte, 8<<20)
	sawShort, sawEAGAIN := false, false
	for i := 0; i < 64 && !sawEAGAIN; i++ {
		r.GetSQE().PrepSend(fd, big, unix.MSG_DONTWAIT, uint64(i))
		c := reap(t, r, 1)[0]
		switch {
		case c.Res == -int32(unix.EAGAIN):
			sawEAGAIN = true
		case c.Res < 0:
			t.Fatalf("send: %v", unix.Errno(-c.Res))
		case int(c.Res) < len(big):
			sawShort = true
		}
	}
	if !sawShort || !sawEAGAIN {
		t.Fatalf("short send seen %v, EAGAIN seen %v; want both", sawShort, sawEAGAIN)
	}
}

// TestSendSkipSuccess pins down what the reactor's sends rely on: with
// MSG_WAITALL|MSG_DONTWAIT and SQECQESkip, a send the socket takes whole
// completes inside the submitting io_uring_enter and posts nothing; one it
// takes in part posts a CQE with the bytes taken (the request failed, so
// the skip does not apply), and one it cannot take at all posts -EAGAIN.
func TestSendSkipSuccess(t *testing.T) {
	r := newRing(t, 8, nil)
	fd, peer := tcpPair(t)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	small := []byte("fits")
	s := r.GetSQE()
	s.PrepSend(fd, small, unix.MSG_WAITALL|unix.MSG_DONTWAIT, 1)
	s.Flags |= SQECQESkip
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if r.Pending() != 0 || r.Ready() != 0 {
		t.Fatalf("after submitting a whole send: %d pending, %d completions; want none", r.Pending(), r.Ready())
	}
	got := make([]byte, 4)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "fits" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	big := make([]byte, 8<<20)
	sawShort, sawEAGAIN := false, false
	for i := 0; i < 64 && !sawEAGAIN; i++ {
		s := r.GetSQE()
		s.PrepSend(fd, big, unix.MSG_WAITALL|unix.MSG_DONTWAIT, uint64(10+i))
		s.Flags |= SQECQESkip
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		if r.Ready() != 1 {
			t.Fatalf("send %d of 8 MiB into a full socket: %d completions, want 1", i, r.Ready())
		}
		c := *r.CQE(0)
		r.Advance(1)
		switch {
		case c.Res == -int32(unix.EAGAIN):
			sawEAGAIN = true
		case c.Res > 0 && int(c.Res) < len(big):
			sawShort = true
		default:
			t.Fatalf("send %d: %+v; want a short count or -EAGAIN", i, c)
		}
	}
	if !sawShort || !sawEAGAIN {
		t.Fatalf("short send seen %v, EAGAIN seen %v; want both", sawShort, sawEAGAIN)
	}
}

func TestSendZC(t *testing.T) {
	r := newRing(t, 8, nil)
	p, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	if !p.Supports(OpSendZC) {
		t.Skip("kernel lacks IORING_OP_SEND_ZC (6.0)")
	}
	fd, peer := tcpPair(t)
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i)
	}
	r.GetSQE().PrepSendZC(fd, payload, 0, SendZCReportUsage, 9)
	go func() {
		buf := make([]byte, len(payload))
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		n := 0
		for n < len(buf) {
			k, err := peer.Read(buf[n:])
			if err != nil {
				return
			}
			n += k
		}
	}()
	cqes := reap(t, r, 2)
	res, notif := cqes[0], cqes[1]
	if res.Res != int32(len(payload)) || res.Flags&CQEFMore == 0 {
		t.Fatalf("send completion %+v: want all bytes and CQEFMore (a notification follows)", res)
	}
	if notif.Flags&CQEFNotif == 0 || notif.UserData != 9 {
		t.Fatalf("notification %+v: want CQEFNotif and the same user data", notif)
	}
	// Loopback delivers into the peer's socket, so the kernel copies
	// there after all and says so.
	if uint32(notif.Res)&NotifUsageZCCopied == 0 {
		t.Log("zero-copy send not copied (not loopback?)")
	}
}

func TestUnsubmittedRewrite(t *testing.T) {
	r := newRing(t, 8, nil)
	fd, _ := tcpPair(t)
	r.GetSQE().PrepSend(fd, []byte("never sent"), 0, 1)
	r.GetSQE().PrepNop(2)
	n := 0
	r.Unsubmitted(func(s *SQE) bool {
		n++
		if s.UserData == 1 {
			s.PrepNop(1)
		}
		return true
	})
	if n != 2 {
		t.Fatalf("saw %d unsubmitted SQEs, want 2", n)
	}
	for _, c := range reap(t, r, 2) {
		if c.Res != 0 {
			t.Fatalf("completion %+v: the send was not turned into a NOP", c)
		}
	}
	var buf [16]byte
	unix.SetNonblock(fd, true)
	if _, err := unix.Read(fd, buf[:]); err != unix.EAGAIN {
		t.Fatalf("peer got bytes or error %v", err)
	}
}

func TestReadEventfd(t *testing.T) {
	r := newRing(t, 4, nil)
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	var buf [8]byte
	r.GetSQE().PrepRead(efd, buf[:], 3)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if r.Ready() != 0 {
		t.Fatal("the read completed before the eventfd was written")
	}
	one := [8]byte{1}
	unix.Write(efd, one[:])
	c := reap(t, r, 1)[0]
	if c.UserData != 3 || c.Res != 8 || buf[0] != 1 {
		t.Fatalf("eventfd read %+v, buf %v", c, buf)
	}
	runtime.KeepAlive(&buf)
}

// TestFakeRing checks the fake kernel the reactor's fuzzer plays: SQEs
// reach TakeSubmitted in order, Post fills the CQ, and FakeRecv consumes
// provided buffers as the kernel does, incrementally or whole.
func TestFakeRing(t *testing.T) {
	r := NewFake(4, 8)
	for i := range 6 { // more than the SQ holds: submit to make room
		s := r.GetSQE()
		if s == nil {
			if _, err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			s = r.GetSQE()
		}
		s.PrepNop(uint64(i))
	}
	r.Submit()
	got := r.TakeSubmitted()
	if len(got) != 6 || got[0].UserData != 0 || got[5].UserData != 5 {
		t.Fatalf("submitted %+v", got)
	}
	for i := range 8 {
		if !r.Post(CQE{UserData: uint64(i)}) {
			t.Fatalf("CQ full after %d", i)
		}
	}
	if r.Post(CQE{}) || r.Ready() != 8 || r.CQE(7).UserData != 7 {
		t.Fatalf("CQ: ready %d", r.Ready())
	}
	r.Advance(8)
	for _, inc := range []bool{true, false} {
		flags := uint16(0)
		if inc {
			flags = PbufRingInc
		}
		br, _ := r.RegisterBufRing(2, 1, flags)
		a, b := make([]byte, 10), make([]byte, 10)
		br.Add(a, 7)
		br.Add(b, 8)
		br.Publish()
		n, f, ok := br.FakeRecv([]byte("abcd"))
		wantMore := inc
		if !ok || n != 4 || uint16(f>>cqeBufferShift) != 7 || (f&CQEFBufMore != 0) != wantMore || string(a[:4]) != "abcd" {
			t.Fatalf("inc=%v: first receive n=%d flags=%#x ok=%v", inc, n, f, ok)
		}
		n, f, _ = br.FakeRecv([]byte("0123456789xyz"))
		if inc && (n != 6 || uint16(f>>cqeBufferShift) != 7 || string(a) != "abcd012345") {
			t.Fatalf("incremental: second receive n=%d into %q", n, a)
		}
		if !inc && (n != 10 || uint16(f>>cqeBufferShift) != 8) {
			t.Fatalf("whole buffers: second receive n=%d flags %#x", n, f)
		}
	}
}

// TestWaitBatch: with a batch budget, one completion of the three asked
// for ends the wait once the budget has passed, not at once and not at the
// timeout; with nothing in, the wait goes on past the budget and ends at
// the first completion.
func TestWaitBatch(t *testing.T) {
	p := Params{Flags: SetupSingleIssuer | SetupDeferTaskrun}
	r := newRing(t, 8, &p)
	if !r.BatchWait() {
		t.Skip("kernel lacks IORING_FEAT_MIN_TIMEOUT (6.12)")
	}
	var efds [3]int
	var bufs [3][8]byte
	for i := range efds {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		efds[i] = fd
		r.GetSQE().PrepRead(fd, bufs[i][:], uint64(i))
	}
	one := [8]byte{1}
	unix.Write(efds[0], one[:])
	start := time.Now()
	if _, err := r.SubmitAndWaitBatch(3, 40*time.Millisecond, 5*time.Second, SyscallWait); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if r.Ready() != 1 || d < 30*time.Millisecond || d > 2*time.Second {
		t.Fatalf("one of three in: returned after %s with %d ready; want about 40ms and 1", d, r.Ready())
	}
	r.Advance(1)
	go func() {
		time.Sleep(150 * time.Millisecond)
		unix.Write(efds[1], one[:])
	}()
	start = time.Now()
	for r.Ready() == 0 && time.Since(start) < 5*time.Second {
		if _, err := r.SubmitAndWaitBatch(3, 40*time.Millisecond, 5*time.Second, SyscallWait); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); r.Ready() != 1 || d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("nothing in for 150ms: returned after %s with %d ready; want about 150ms and 1", d, r.Ready())
	}
	runtime.KeepAlive(&bufs)
}
