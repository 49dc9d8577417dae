package reactor

import (
	"net"
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

// iocpConn is a connection with the state its overlapped operations need.
// The kernel writes into rov and sov (and reads sendB) until their
// completions are dequeued, so an iocpConn stays in the loop's slot table,
// closed or not, until no operation is in flight; only then is its slot
// reused. Conn comes first: every Conn on Windows is the head of an
// iocpConn, and winConn recovers it from the *Conn the portable code holds.
type iocpConn struct {
	Conn
	slot   uint32
	inOps  uint8 // opRecv|opSend in flight
	rov    windows.Overlapped
	sov    windows.Overlapped
	rbuf   windows.WSABuf // the zero-byte receive's buffer
	sbuf   windows.WSABuf // the overlapped send's buffer
	zero   [1]byte        // what rbuf points at; never written (length 0)
	sendQ  Buf            // the write queue being sent, moved out of out
	sendB  []byte         // its bytes the kernel has not taken yet
	sendIO uint32         // bytes the in-flight WSASend was asked to take
}

// winConn returns the iocpConn c heads.
func winConn(c *Conn) *iocpConn { return (*iocpConn)(unsafe.Pointer(c)) }

func (c *Conn) handle() windows.Handle { return windows.Handle(c.fd) }

// open makes s, accepted for this loop, a connection.
func (l *Loop) open(s windows.Handle) {
	p := &l.plat
	// Non-blocking, so that the synchronous receive after a zero-byte
	// completion and the first WSASend of a flush never wait.
	nb := uint32(1)
	if err := ioctlsocket(s, fionbio, &nb); err != nil {
		l.log.Error("reactor: open connection", "loop", l.idx, "err", os.NewSyscallError("ioctlsocket FIONBIO", err))
		windows.Closesocket(s)
		return
	}
	// Latency first: replies go out as soon as WSASend hands them over.
	windows.SetsockoptInt(s, windows.IPPROTO_TCP, windows.TCP_NODELAY, 1)
	var slot uint32
	if n := len(p.free); n > 0 {
		slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		if len(p.conns) > slotMask {
			l.stats.acceptFails.Add(1)
			windows.Closesocket(s)
			return
		}
		slot = uint32(len(p.conns))
		p.conns = append(p.conns, nil)
	}
	p.gen++
	w := &iocpConn{Conn: Conn{loop: l, fd: int(s), gen: p.gen}, slot: slot}
	key := keyConn | uintptr(w.gen&genMask)<<slotBits | uintptr(slot)
	if _, err := windows.CreateIoCompletionPort(s, p.port, key, 0); err != nil {
		l.log.Error("reactor: register connection", "loop", l.idx, "err", os.NewSyscallError("CreateIoCompletionPort", err))
		windows.Closesocket(s)
		p.free = append(p.free, slot)
		return
	}
	p.conns[slot] = w
	l.stats.conns.Add(1)
	l.stats.accepted.Add(1)
	c := &w.Conn
	l.h.OnOpen(c)
	c.Flush()
	if c.flags&fClosed == 0 {
		w.postRecv()
	}
}

// postRecv posts the zero-byte receive that reports when c is readable.
func (w *iocpConn) postRecv() {
	if w.inOps&opRecv != 0 || w.flags&(fClosed|fPeerEOF) != 0 {
		return
	}
	w.rov = windows.Overlapped{}
	w.rbuf = windows.WSABuf{Len: 0, Buf: &w.zero[0]}
	var n, flags uint32
	err := windows.WSARecv(w.handle(), &w.rbuf, 1, &n, &flags, &w.rov, nil)
	if err != nil && err != windows.ERROR_IO_PENDING {
		w.closeNow(os.NewSyscallError("WSARecv", err))
		return
	}
	w.inOps |= opRecv
	w.loop.plat.ops++
}

// done handles the completion of one of w's operations.
func (w *iocpConn) done(ov *windows.Overlapped, qty uint32) {
	switch ov {
	case &w.rov:
		w.inOps &^= opRecv
		w.recvDone()
	case &w.sov:
		w.inOps &^= opSend
		w.sendDone(qty)
	default:
		w.loop.log.Error("reactor: completion for an unknown operation", "loop", w.loop.idx, "slot", w.slot)
		return
	}
	if w.flags&fClosed != 0 && w.inOps == 0 {
		w.retire()
	}
}

// recvDone: c is readable (or at EOF, or failed). Read once, as the epoll
// loop does per event, and wait again.
func (w *iocpConn) recvDone() {
	if w.flags&fClosed != 0 {
		return
	}
	if st := windows.NTStatus(w.rov.Internal); st != windows.STATUS_SUCCESS {
		w.closeNow(os.NewSyscallError("WSARecv", st.Errno()))
		return
	}
	w.loop.read(&w.Conn)
	w.postRecv()
}

// read does one non-blocking receive on c and hands the bytes to the
// handler. It reports whether the receive returned data (so a caller may
// read again).
func (l *Loop) read(c *Conn) bool {
	buf := l.rbuf
	wb := windows.WSABuf{Len: uint32(len(buf) - headroom), Buf: &buf[headroom]}
	var got, flags uint32
	err := windows.WSARecv(c.handle(), &wb, 1, &got, &flags, nil, nil)
	n := int(got)
	switch {
	case err == windows.WSAEWOULDBLOCK:
		return false
	case err != nil:
		c.closeNow(os.NewSyscallError("WSARecv", err))
		return false
	case n == 0:
		c.peerEOF()
		return false
	}
	return l.handleRead(c, n)
}

// flush sends the loop's queued iovecs for c with one non-blocking WSASend
// (the iovecs are the WSABUFs) and queues what the kernel did not take. The
// send is synchronous because the iovecs point into the loop's read buffer
// and scratch, which the loop reuses as soon as flush returns: an overlapped
// send would pin them. While an overlapped send of the queue is in flight,
// everything is queued behind it, to keep order.
func (c *Conn) flush() {
	l := c.loop
	p := &l.plat
	niov := l.takePending()
	if niov == 0 || c.flags&fClosed != 0 {
		clear(p.iov[:niov])
		l.resetScratch()
		return
	}
	w := winConn(c)
	n := 0
	if w.inOps&opSend == 0 && c.outHead >= c.out.Len() {
		var sent uint32
		err := windows.WSASend(c.handle(), &p.iov[0], uint32(niov), &sent, 0, nil, nil)
		if err != nil && err != windows.WSAEWOULDBLOCK {
			clear(p.iov[:niov])
			l.resetScratch()
			c.closeNow(os.NewSyscallError("WSASend", err))
			return
		}
		n = int(sent)
		l.stats.writeCalls.Add(1)
		l.stats.bytesOut.Add(uint64(n))
	}
	for i := 0; i < niov; i++ {
		v := &p.iov[i]
		ln := int(v.Len)
		switch {
		case n >= ln:
			n -= ln
		case c.flags&fClosed == 0:
			// copy: the socket would block, or a send is in flight. queue
			// closes c when no memory is left for it.
			c.queue(unsafe.Slice(v.Buf, ln)[n:])
			n = 0
		}
		v.Buf = nil // let the GC have the buffer
	}
	l.resetScratch()
	if c.flags&fClosed == 0 && w.inOps&opSend == 0 && c.outHead < c.out.Len() {
		w.startSend()
	}
}

// inFlight is the part of the queue an overlapped send has taken out of
// c.out and the kernel has not sent yet: it counts against MaxWriteQueue.
func (c *Conn) inFlight() int { return len(winConn(c).sendB) }

// startSend moves the write queue out of c.out into the overlapped send: the
// kernel reads those bytes until the completion, so they must not move,
// while c.out keeps taking (and may grow or compact) what comes after.
func (w *iocpConn) startSend() {
	c := &w.Conn
	w.sendQ, c.out = c.out, Buf{} // the memory and its accounting move together
	w.sendB = w.sendQ.Bytes()[c.outHead:]
	c.outHead = 0
	w.sendMore()
}

// sendMore posts the overlapped WSASend of sendB.
func (w *iocpConn) sendMore() {
	w.sov = windows.Overlapped{}
	w.sendIO = uint32(min(len(w.sendB), 1<<30))
	w.sbuf = windows.WSABuf{Len: w.sendIO, Buf: &w.sendB[0]}
	var n uint32
	err := windows.WSASend(w.handle(), &w.sbuf, 1, &n, 0, &w.sov, nil)
	if err != nil && err != windows.ERROR_IO_PENDING {
		w.freeSend()
		w.closeNow(os.NewSyscallError("WSASend", err))
		return
	}
	// Completed now or later, the completion is queued either way.
	w.inOps |= opSend
	w.loop.plat.ops++
}

func (w *iocpConn) freeSend() {
	w.sendQ.Free(w.loop)
	w.sendB = nil
}

// sendDone: the kernel took qty bytes of the queue.
func (w *iocpConn) sendDone(qty uint32) {
	l := w.loop
	if w.flags&fClosed != 0 {
		w.freeSend()
		return
	}
	if st := windows.NTStatus(w.sov.Internal); st != windows.STATUS_SUCCESS {
		w.freeSend()
		w.closeNow(os.NewSyscallError("WSASend", st.Errno()))
		return
	}
	l.stats.writeCalls.Add(1)
	l.stats.bytesOut.Add(uint64(qty))
	if int(qty) < len(w.sendB) {
		w.sendB = w.sendB[qty:]
		w.sendMore()
		return
	}
	w.freeSend()
	c := &w.Conn
	switch {
	case c.outHead < c.out.Len():
		w.startSend()
	case c.flags&(fClosing|fPeerEOF) != 0:
		c.shutdownWrite()
	}
}

// peerEOF handles the peer's FIN: close now, unless replies are still
// queued, in which case they are sent first (a half-closed peer may still
// read).
func (c *Conn) peerEOF() {
	w := winConn(c)
	if (c.outHead >= c.out.Len() && w.inOps&opSend == 0) || c.flags&fWriteShut != 0 {
		c.closeNow(ErrPeerClosed)
		return
	}
	c.flags |= fPeerEOF // no more receives: sendDone finishes
	c.SetDeadline(time.Unix(0, c.loop.now).Add(c.loop.e.cfg.LingerTimeout))
}

// shutdownWrite sends FIN after the last queued byte and waits (bounded by
// the linger timeout) for the peer to close. With a send in flight it only
// sets that bound; sendDone calls again when the queue is empty.
func (c *Conn) shutdownWrite() {
	linger := time.Unix(0, c.loop.now).Add(c.loop.e.cfg.LingerTimeout)
	w := winConn(c)
	if w.inOps&opSend != 0 || c.outHead < c.out.Len() {
		c.flags |= fClosing
		c.SetDeadline(linger)
		c.progressed() // the baseline the linger deadline compares with
		return
	}
	if c.flags&fPeerEOF != 0 {
		c.closeNow(ErrPeerClosed)
		return
	}
	c.flags = c.flags&^fClosing | fWriteShut
	if err := windows.Shutdown(c.handle(), windows.SHUT_WR); err != nil {
		c.closeNow(os.NewSyscallError("shutdown", err))
		return
	}
	c.SetDeadline(linger)
}

// closeNow closes the socket, which cancels c's operations in flight; c's
// slot is reused once their completions are dequeued.
func (c *Conn) closeNow(err error) {
	if c.flags&fClosed != 0 {
		return
	}
	l := c.loop
	l.dropPending(c)
	c.flags |= fClosed
	windows.Closesocket(c.handle())
	c.in.Free(l)
	c.out.Free(l)
	c.outHead = 0
	l.stats.conns.Add(-1)
	l.h.OnClose(c, err)
	if w := winConn(c); w.inOps == 0 {
		w.retire()
	}
}

// retire frees a closed connection's slot once nothing is in flight.
func (w *iocpConn) retire() {
	p := &w.loop.plat
	if int(w.slot) < len(p.conns) && p.conns[w.slot] == w {
		p.conns[w.slot] = nil
		p.free = append(p.free, w.slot)
	}
}

// progressed reports whether the peer took any of c's output since the last
// call: the bytes of the send in flight plus the queue shrank. An
// overlapped send completes once the kernel has buffered its bytes, and it
// stays pending while the peer's window and our send buffer are full, so a
// slow reader keeps completing sends and a peer that stopped does not.
// (SIO_TCP_INFO would also see the kernel's unacknowledged bytes; wine 8
// does not implement it, and the queue is what a stuck peer holds.)
func (c *Conn) progressed() bool {
	w := winConn(c)
	pending := len(w.sendB) + c.out.Len() - c.outHead
	moved := pending < c.sent
	c.sent = pending
	return moved
}

func (c *Conn) remoteAddr() net.Addr {
	sa, err := windows.Getpeername(c.handle())
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}
