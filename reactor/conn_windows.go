package reactor

import (
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Operations a connection can have in flight: one zero-byte receive and one
// send at most.
const (
	opRecv uint8 = 1 << iota
	opSend
)

// sockFD is a socket handle as a Conn keeps it.
type sockFD = int

// connPlat is what a connection's overlapped operations need. The kernel
// writes into rov and sov (and reads c.io.flight.b) until their completions are
// dequeued, so a connection stays in the loop's slot table, closed or not,
// until no operation is in flight; only then is its slot reused.
type connPlat struct {
	inOps  uint8 // opRecv|opSend in flight
	rov    windows.Overlapped
	sov    windows.Overlapped
	rbuf   windows.WSABuf // the zero-byte receive's buffer
	sbuf   windows.WSABuf // the overlapped send's buffer
	zero   [1]byte        // what rbuf points at; never written (length 0)
	sendIO uint32         // bytes the in-flight WSASend was asked to take (of c.io.flight)
}

func (c *Conn) handle() windows.Handle { return windows.Handle(c.fd) }

// open makes s, accepted for this loop, a connection if the admission
// caps let its peer in; otherwise s is reset and closed.
func (l *Loop) open(s windows.Handle) {
	var ap netip.AddrPort
	if sa, err := windows.Getpeername(s); err == nil {
		ap = sockaddrToTCP(sa).AddrPort()
	}
	p := l.admit(ap)
	if p == nil {
		windows.SetsockoptLinger(s, windows.SOL_SOCKET, windows.SO_LINGER, &windows.Linger{Onoff: 1, Linger: 0})
		windows.Closesocket(s)
		return
	}
	// Non-blocking, so that the synchronous receive after a zero-byte
	// completion and the first WSASend of a flush never wait.
	nb := uint32(1)
	if err := ioctlsocket(s, fionbio, &nb); err != nil {
		l.log.Error("reactor: open connection", "loop", l.idx, "err", os.NewSyscallError("ioctlsocket FIONBIO", err))
		windows.Closesocket(s)
		l.unadmit(p)
		return
	}
	// Latency first: replies go out as soon as WSASend hands them over.
	windows.SetsockoptInt(s, windows.IPPROTO_TCP, windows.TCP_NODELAY, 1)
	if d := l.e.cfg.KeepAlive; d > 0 {
		setKeepAlive(s, d)
	}
	slot, ok := l.newSlot()
	if !ok {
		count(&l.stats.AcceptFails, 1)
		windows.Closesocket(s)
		l.unadmit(p)
		return
	}
	l.p.gen++
	c := &Conn{loop: l, fd: sockFD(s), gen: l.p.gen, slot: slot, peer: p}
	l.conns[slot] = c
	key := keyConn | uintptr(c.gen&genMask)<<slotBits | uintptr(slot)
	if _, err := windows.CreateIoCompletionPort(s, l.p.port, key, 0); err != nil {
		l.log.Error("reactor: register connection", "loop", l.idx, "err", os.NewSyscallError("CreateIoCompletionPort", err))
		windows.Closesocket(s)
		c.retire()
		l.unadmit(p)
		return
	}
	l.opened(c)
	if c.flags&fClosed == 0 {
		c.postRecv()
	}
}

// postRecv posts the zero-byte receive that reports when c is readable.
func (c *Conn) postRecv() {
	w := &c.p
	if w.inOps&opRecv != 0 || c.flags&(fClosed|fPeerEOF) != 0 {
		return
	}
	w.rov = windows.Overlapped{}
	w.rbuf = windows.WSABuf{Len: 0, Buf: &w.zero[0]}
	var n, flags uint32
	err := windows.WSARecv(c.handle(), &w.rbuf, 1, &n, &flags, &w.rov, nil)
	if err != nil && err != windows.ERROR_IO_PENDING {
		c.closeNow(os.NewSyscallError("WSARecv", err))
		return
	}
	w.inOps |= opRecv
	c.loop.p.ops++
}

// done handles the completion of one of c's operations.
func (c *Conn) done(ov *windows.Overlapped, qty uint32) {
	w := &c.p
	switch ov {
	case &w.rov:
		w.inOps &^= opRecv
		c.recvDone()
	case &w.sov:
		w.inOps &^= opSend
		c.sendDone(qty)
	default:
		c.loop.log.Error("reactor: completion for an unknown operation", "loop", c.loop.idx, "slot", c.slot)
		return
	}
	if c.flags&fClosed != 0 && w.inOps == 0 {
		c.retire()
	}
}

// recvDone: c is readable (or at EOF, or failed). Read once, as the epoll
// loop does per event, and wait again.
func (c *Conn) recvDone() {
	if c.flags&fClosed != 0 {
		return
	}
	if st := windows.NTStatus(c.p.rov.Internal); st != windows.STATUS_SUCCESS {
		c.closeNow(os.NewSyscallError("WSARecv", st.Errno()))
		return
	}
	c.loop.read(c)
	c.postRecv()
}

// recv is one non-blocking WSARecv into p.
func (c *Conn) recv(p []byte) (int, error) {
	wb := windows.WSABuf{Len: uint32(len(p)), Buf: &p[0]}
	var got, flags uint32
	err := windows.WSARecv(c.handle(), &wb, 1, &got, &flags, nil, nil)
	switch {
	case err == windows.WSAEWOULDBLOCK:
		return 0, errWouldBlock
	case err != nil:
		return 0, os.NewSyscallError("WSARecv", err)
	}
	return int(got), nil
}

// send is one non-blocking WSASend of bufs as WSABUFs. It is synchronous
// because bufs point into the loop's read buffer and scratch, which the
// loop reuses as soon as the flush returns: an overlapped send would pin
// them.
func (c *Conn) send(bufs [][]byte) (int, error) {
	wb := c.loop.p.wsabufs[:len(bufs)]
	for i, b := range bufs {
		wb[i] = windows.WSABuf{Len: uint32(len(b)), Buf: &b[0]}
	}
	defer clear(wb)
	var sent uint32
	err := windows.WSASend(c.handle(), &wb[0], uint32(len(wb)), &sent, 0, nil, nil)
	if err != nil && err != windows.WSAEWOULDBLOCK {
		return 0, os.NewSyscallError("WSASend", err)
	}
	return int(sent), nil
}

// unsent is 0: the bytes Windows holds for us are the in-flight send's
// (inFlight, counted in Queued). An overlapped send completes once the
// kernel has buffered its bytes, and stays pending while the peer's window
// and our send buffer are full, so a slow reader keeps completing sends and
// a peer that stopped does not. (SIO_TCP_INFO would also see the kernel's
// unacknowledged bytes; wine 8 does not implement it.)
func (c *Conn) unsent() (int, bool) { return 0, true }

// acked cannot tell (see unsent): a send the kernel does not take stays
// in flight, queued, and the write stall clock runs; output the kernel's
// send buffer took whole is not timed here.
func (c *Conn) acked() (uint64, bool) { return 0, false }

// sending is false: the first WSASend of a flush is synchronous.
func (c *Conn) sending() bool { return false }

// startOutput sends the write queue with an overlapped WSASend unless one is
// in flight (sendDone then starts the next).
func (c *Conn) startOutput() {
	if c.p.inOps&opSend != 0 {
		return
	}
	c.io.flight.take(c)
	c.sendMore()
}

// sendMore posts the overlapped WSASend of c.io.flight.b.
func (c *Conn) sendMore() {
	w := &c.p
	b := c.io.flight.b
	w.sov = windows.Overlapped{}
	w.sendIO = uint32(min(len(b), 1<<30))
	w.sbuf = windows.WSABuf{Len: w.sendIO, Buf: &b[0]}
	var n uint32
	err := windows.WSASend(c.handle(), &w.sbuf, 1, &n, 0, &w.sov, nil)
	if err != nil && err != windows.ERROR_IO_PENDING {
		c.freeSend()
		c.closeNow(os.NewSyscallError("WSASend", err))
		return
	}
	// Completed now or later, the completion is queued either way.
	w.inOps |= opSend
	c.loop.p.ops++
}

func (c *Conn) freeSend() { c.flightDone() }

// sendDone: the kernel took qty bytes of the queue.
func (c *Conn) sendDone(qty uint32) {
	w := &c.p
	if c.flags&fClosed != 0 {
		c.freeSend()
		return
	}
	if st := windows.NTStatus(w.sov.Internal); st != windows.STATUS_SUCCESS {
		c.freeSend()
		c.closeNow(os.NewSyscallError("WSASend", st.Errno()))
		return
	}
	if c.io.flight.sent(c, int(qty)) {
		c.sendMore()
		return
	}
	c.freeSend()
	if c.queuedOut() > 0 {
		c.startOutput()
		return
	}
	c.outputDone()
}

// stopInput needs no call: recvDone posts no receive after EOF.
func (c *Conn) stopInput() {}

func (c *Conn) shutWrite() error {
	return os.NewSyscallError("shutdown", windows.Shutdown(c.handle(), windows.SHUT_WR))
}

// closeSocket closes the socket, which cancels c's operations in flight;
// c's slot is reused once their completions are dequeued.
func (c *Conn) closeSocket() {
	windows.Closesocket(c.handle())
	if c.p.inOps == 0 {
		c.retire()
	}
}

func (c *Conn) remoteAddr() net.Addr {
	sa, err := windows.Getpeername(c.handle())
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

// setKeepAlive turns TCP keepalive on with SIO_KEEPALIVE_VALS: the first
// probe after d of silence, then one every d (Windows sends 10 probes, a
// number it does not let us set). Best effort, as on Linux.
func setKeepAlive(s windows.Handle, d time.Duration) {
	ms := uint32(max(d/time.Millisecond, 1))
	ka := windows.TCPKeepalive{OnOff: 1, Time: ms, Interval: ms}
	var n uint32
	windows.WSAIoctl(s, windows.SIO_KEEPALIVE_VALS, (*byte)(unsafe.Pointer(&ka)), uint32(unsafe.Sizeof(ka)), nil, 0, &n, nil, 0)
}
