package uring

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listener returns a non-blocking listening socket on 127.0.0.1 and its
// address.
func listener(t *testing.T) (int, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	in := sa.(*unix.SockaddrInet4)
	return fd, (&net.TCPAddr{IP: in.Addr[:], Port: in.Port}).String()
}

func TestMultishotAccept(t *testing.T) {
	r := newRing(t, 8, nil)
	lfd, addr := listener(t)
	r.GetSQE().PrepAcceptMultishot(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 1)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for i, c := range reap(t, r, 3) {
		if c.UserData != 1 || c.Res < 0 || c.Flags&CQEFMore == 0 {
			t.Fatalf("accept %d: %+v; want a descriptor and CQEFMore", i, c)
		}
		unix.Close(int(c.Res))
	}
	r.GetSQE().PrepCancel(1, 0, 2)
	cqes := reap(t, r, 2)
	byData := map[uint64]CQE{cqes[0].UserData: cqes[0], cqes[1].UserData: cqes[1]}
	if c := byData[1]; c.Res != -int32(unix.ECANCELED) || c.Flags&CQEFMore != 0 {
		t.Fatalf("cancelled accept: %+v; want -ECANCELED and no CQEFMore", c)
	}
	if c := byData[2]; c.Res != 0 {
		t.Fatalf("cancel: %+v", c)
	}
}

// recvAll collects a multishot receive's completions from br's buffers
// (incremental consumption: each completion continues where the previous
// one of the same buffer ended) until want bytes or the request ends.
type recvState struct {
	bufs [][]byte
	off  []int
	got  []byte
	ends []CQE // completions without CQEFMore
	done []uint16
}

func (s *recvState) take(t *testing.T, c CQE) {
	t.Helper()
	if c.Flags&CQEFMore == 0 {
		s.ends = append(s.ends, c)
	}
	if c.Res <= 0 {
		return
	}
	if c.Flags&CQEFBuffer == 0 {
		t.Fatalf("receive of %d bytes without a buffer: %+v", c.Res, c)
	}
	bid := c.BufferID()
	s.got = append(s.got, s.bufs[bid][s.off[bid]:s.off[bid]+int(c.Res)]...)
	s.off[bid] += int(c.Res)
	if c.Flags&CQEFBufMore == 0 {
		s.done = append(s.done, bid) // the kernel is done with it: if added again, it starts over
		s.off[bid] = 0
	}
}

// incRing registers an incremental buffer ring of group on r with four
// buffers of 1,000 bytes, and the state that follows its receives.
func incRing(t *testing.T, r *Ring, group uint16) (*BufRing, *recvState) {
	t.Helper()
	br, err := r.RegisterBufRing(4, group, PbufRingInc)
	if err != nil {
		t.Skipf("incremental buffer rings unavailable (6.12): %v", err)
	}
	t.Cleanup(func() { br.Unregister() })
	s := &recvState{off: make([]int, 4)}
	for i := range 4 {
		s.bufs = append(s.bufs, make([]byte, 1000))
		br.Add(s.bufs[i], uint16(i))
	}
	br.Publish()
	return br, s
}

func TestRecvMultishotIncremental(t *testing.T) {
	r := newRing(t, 8, nil)
	br, s := incRing(t, r, 7)
	fd, peer := tcpPair(t)
	r.GetSQE().PrepRecvMultishot(fd, br.Group(), 0, 0, 5)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 10 { // 10 writes of 150 bytes: 1500 bytes cross into buffer 1
		msg := bytes.Repeat([]byte{byte('a' + i)}, 150)
		want = append(want, msg...)
		peer.Write(msg)
		for len(s.got) < len(want) {
			for _, c := range reap(t, r, 1) {
				s.take(t, c)
			}
		}
	}
	if !bytes.Equal(s.got, want) {
		t.Fatalf("received %d bytes, not what was sent", len(s.got))
	}
	if len(s.done) != 1 || s.done[0] != 0 || s.off[0] != 0 || s.off[1] != 500 {
		t.Fatalf("buffers done %v, offsets %v: want buffer 0 full and 500 bytes in buffer 1", s.done, s.off)
	}
	peer.Close()
	for len(s.ends) == 0 {
		for _, c := range reap(t, r, 1) {
			s.take(t, c)
		}
	}
	if e := s.ends[0]; e.Res != 0 {
		t.Fatalf("end of the receive: %+v, want Res 0 (EOF)", e)
	}
}

// TestRecvLimit: a multishot receive with a byte limit ends, its last
// completion carrying bytes and no CQEFMore, once it has taken the limit
// (at most a buffer more); the rest stays in the socket, in order, for the
// next receive. The reactor gives each connection a turn's share so.
func TestRecvLimit(t *testing.T) {
	r := newRing(t, 8, nil)
	br, s := incRing(t, r, 9)
	fd, peer := tcpPair(t)
	want := make([]byte, 2500)
	for i := range want {
		want[i] = byte(i * 13)
	}
	peer.Write(want)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	unix.Poll(pfd, 5000)
	time.Sleep(10 * time.Millisecond) // let it all arrive
	r.GetSQE().PrepRecvMultishot(fd, br.Group(), 0, 600, 1)
	for len(s.ends) == 0 {
		for _, c := range reap(t, r, 1) {
			if c.Res == -int32(unix.EINVAL) {
				t.Skip("kernel lacks IORING_RECV_MSHOT_LIM (6.17)")
			}
			s.take(t, c)
		}
	}
	if e := s.ends[0]; e.Res <= 0 || len(s.got) < 600 || len(s.got) > 1000 {
		t.Fatalf("limited receive ended with %+v after %d bytes; want an end with bytes after 600 to 1000 of the 2500 sent", e, len(s.got))
	}
	s.ends = nil
	r.GetSQE().PrepRecvMultishot(fd, br.Group(), 0, 0, 2)
	for len(s.got) < len(want) {
		for _, c := range reap(t, r, 1) {
			s.take(t, c)
		}
	}
	if !bytes.Equal(s.got, want) {
		t.Fatalf("after the limit and a new receive: %d bytes, not the 2500 sent in order", len(s.got))
	}
	if len(s.ends) != 0 {
		t.Fatalf("the receive without a limit ended: %+v", s.ends)
	}
}

// TestRecvENOBUFS runs a multishot receive dry: it ends with -ENOBUFS, the
// data stays in the socket, and after new buffers and a new request every
// byte arrives in order. Short reads (a bound per completion) split the
// data across completions.
func TestRecvENOBUFS(t *testing.T) {
	r := newRing(t, 8, nil)
	br, err := r.RegisterBufRing(4, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Unregister()
	s := &recvState{off: make([]int, 4)}
	for range 4 {
		s.bufs = append(s.bufs, make([]byte, 256))
	}
	br.Add(s.bufs[0], 0)
	br.Add(s.bufs[1], 1)
	br.Publish()
	fd, peer := tcpPair(t)
	want := make([]byte, 900)
	for i := range want {
		want[i] = byte(i * 7)
	}
	peer.Write(want)
	time.Sleep(10 * time.Millisecond) // let it all arrive
	r.GetSQE().PrepRecvMultishot(fd, br.Group(), 200, 0, 1)
	for len(s.ends) == 0 {
		for _, c := range reap(t, r, 1) {
			s.take(t, c)
		}
	}
	if e := s.ends[0]; e.Res != -int32(unix.ENOBUFS) {
		t.Fatalf("receive ended with %+v, want -ENOBUFS", e)
	}
	if len(s.got) != 400 {
		t.Fatalf("got %d bytes from two buffers with 200-byte reads, want 400", len(s.got))
	}
	// Replenish (buffers 2 and 3, then 0 and 1 again: the ring holds 4)
	// and re-arm.
	s.ends = nil
	for _, bid := range []uint16{2, 3} {
		br.Add(s.bufs[bid], bid)
	}
	br.Add(s.bufs[0], 0)
	br.Add(s.bufs[1], 1)
	br.Publish()
	r.GetSQE().PrepRecvMultishot(fd, br.Group(), 200, 0, 2)
	for len(s.got) < len(want) {
		for _, c := range reap(t, r, 1) {
			s.take(t, c)
		}
	}
	if !bytes.Equal(s.got, want) {
		for i := range s.got {
			if s.got[i] != want[i] {
				t.Fatalf("bytes lost or reordered across ENOBUFS: first difference at %d of %d (got %d bytes)", i, len(want), len(s.got))
			}
		}
		t.Fatalf("got %d bytes, want %d", len(s.got), len(want))
	}
}

// TestCancelFD cancels every request on a descriptor: a multishot receive
// and a send waiting for room both complete with -ECANCELED.
func TestCancelFD(t *testing.T) {
	r := newRing(t, 8, nil)
	br, err := r.RegisterBufRing(2, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Unregister()
	mem := make([]byte, 2*4096)
	br.Add(mem[:4096], 0)
	br.Add(mem[4096:], 1)
	br.Publish()
	fd, _ := tcpPair(t)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	big := make([]byte, 16<<20)
	r.GetSQE().PrepRecvMultishot(fd, br.Group(), 0, 0, 1)
	r.GetSQE().PrepSend(fd, big, unix.MSG_WAITALL, 2) // waits for room the peer never makes
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	r.GetSQE().PrepCancelFD(fd, CancelAll, 3)
	byData := map[uint64]CQE{}
	for len(byData) < 3 {
		for _, c := range reap(t, r, 1) {
			byData[c.UserData] = c
		}
	}
	if c := byData[1]; c.Res != -int32(unix.ECANCELED) || c.Flags&CQEFMore != 0 {
		t.Errorf("receive: %+v, want -ECANCELED and no CQEFMore", c)
	}
	// A cancelled send reports the bytes it had sent, if any: the caller
	// must count them.
	if c := byData[2]; c.Res != -int32(unix.ECANCELED) && (c.Res <= 0 || int(c.Res) >= len(big)) {
		t.Errorf("send: %+v, want -ECANCELED or the part sent", c)
	}
	if c := byData[3]; c.Res != 2 {
		t.Errorf("cancel: %+v, want 2 requests cancelled", c)
	}
}
