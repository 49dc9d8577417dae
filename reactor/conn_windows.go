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

// connPlat is what a connection's overlapped operations need. The kernel
// writes into rov and sov (and reads sendB) until their completions are
// dequeued, so a connection stays in the loop's slot table, closed or not,
// until no operation is in flight; only then is its slot reused.
type connPlat struct {
	slot   uint32
	inOps  uint8 // opRecv|opSend in flight
	rov    windows.Overlapped
	sov    windows.Overlapped
	rbuf   windows.WSABuf // the zero-byte receive's buffer
	sbuf   windows.WSABuf // the overlapped send's buffer
	zero   [1]byte        // what rbuf points at; never written (length 0)
	sendQ  Buf            // the write queue being sent, moved out of Conn.out
	sendB  []byte         // its bytes the kernel has not taken yet
	sendIO uint32         // bytes the in-flight WSASend was asked to take
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
	c := &Conn{loop: l, fd: int(s), gen: l.p.gen, p: connPlat{slot: slot}, peer: p}
	key := keyConn | uintptr(c.gen&genMask)<<slotBits | uintptr(slot)
	if _, err := windows.CreateIoCompletionPort(s, l.p.port, key, 0); err != nil {
		l.log.Error("reactor: register connection", "loop", l.idx, "err", os.NewSyscallError("CreateIoCompletionPort", err))
		windows.Closesocket(s)
		l.p.free = append(l.p.free, slot)
		l.unadmit(p)
		return
	}
	l.conns[slot] = c
	l.opened(c)
	if c.flags&fClosed == 0 {
		c.postRecv()
	}
}

// newSlot takes a free slot of the connection table.
func (l *Loop) newSlot() (uint32, bool) {
	p := &l.p
	if n := len(p.free); n > 0 {
		slot := p.free[n-1]
		p.free = p.free[:n-1]
		return slot, true
	}
	if len(l.conns) > slotMask {
		return 0, false
	}
	l.conns = append(l.conns, nil)
	return uint32(len(l.conns) - 1), true
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
		c.loop.log.Error("reactor: completion for an unknown operation", "loop", c.loop.idx, "slot", w.slot)
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

// inFlight is the part of the queue an overlapped send has taken out of
// c.out and the kernel has not sent yet: it counts against the write queue
// limit, and new output queues behind it.
func (c *Conn) inFlight() int { return len(c.p.sendB) }

// unsent is 0: the bytes Windows holds for us are the in-flight send's
// (inFlight, counted in Queued). An overlapped send completes once the
// kernel has buffered its bytes, and stays pending while the peer's window
// and our send buffer are full, so a slow reader keeps completing sends and
// a peer that stopped does not. (SIO_TCP_INFO would also see the kernel's
// unacknowledged bytes; wine 8 does not implement it.)
func (c *Conn) unsent() (int, bool) { return 0, true }

// startOutput sends the write queue with an overlapped WSASend unless one is
// in flight (sendDone then starts the next).
func (c *Conn) startOutput() {
	if c.p.inOps&opSend != 0 {
		return
	}
	// The kernel reads the queue's bytes until the completion, so they must
	// not move while c.out keeps taking (and may grow or compact) what comes
	// after: the queue moves out of c.out, its memory and accounting with it.
	w := &c.p
	w.sendQ, c.out = c.out, Buf{}
	w.sendB = w.sendQ.Bytes()[c.outHead:]
	c.outHead = 0
	c.sendMore()
}

// sendMore posts the overlapped WSASend of sendB.
func (c *Conn) sendMore() {
	w := &c.p
	w.sov = windows.Overlapped{}
	w.sendIO = uint32(min(len(w.sendB), 1<<30))
	w.sbuf = windows.WSABuf{Len: w.sendIO, Buf: &w.sendB[0]}
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

func (c *Conn) freeSend() {
	c.p.sendQ.Free(c)
	c.p.sendB = nil
}

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
	c.wrote(int(qty))
	if int(qty) < len(w.sendB) {
		w.sendB = w.sendB[qty:]
		c.sendMore()
		return
	}
	c.freeSend()
	if c.out.Len() > c.outHead {
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

// retire frees a closed connection's slot once nothing is in flight.
func (c *Conn) retire() {
	l := c.loop
	if int(c.p.slot) < len(l.conns) && l.conns[c.p.slot] == c {
		l.conns[c.p.slot] = nil
		l.p.free = append(l.p.free, c.p.slot)
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
