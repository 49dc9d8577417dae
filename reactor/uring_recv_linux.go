//go:build !noreactor

package reactor

import (
	"math/bits"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/uring"
)

// Receiving with io_uring. Each connection has a multishot receive that
// selects its memory from the loop's provided-buffer ring
// (io_uring_prep_recv_multishot(3), io_uring_register_buf_ring(3)). The
// ring's buffers are slots of the loop's huge-page pool (Go heap memory
// only when the pool has none, as for the epoll engine's read buffer), and
// they are consumed incrementally (IOU_PBUF_RING_INC, Linux 6.12): each
// completion takes only the bytes it received, right after the previous
// completion's bytes in the same buffer, and the kernel moves to the next
// buffer when one is full. The frame is parsed and unmasked where the
// kernel wrote it, and an echo is sent from there.
//
// Buffers the pool cannot give (a pool sized without them, or none at
// all) come from one anonymous mapping the engine owns, outside the Go
// heap and its budget, as fixed as the epoll engine's read buffer.
//
// A buffer goes back into the ring when the kernel is done with it (a
// completion without IORING_CQE_F_BUF_MORE) and the sends that may point
// into it have been answered (its epoch, uring_send_linux.go). A buffer a
// handler kept (Event.Retain, RetainRead) is never given to the kernel
// again: the handler's reference returns it to the pool, and the ring gets
// a fresh slot in its place.
//
// A receive ends once it has taken uringRecvLimit bytes, and is armed
// again the next turn (armReceives), so that one turn takes about that
// from each connection (at most the rest of the buffer the last receive
// took from as well: without bundles a receive is not cut at the limit),
// as an epoll turn reads a buffer's worth: a flooding client cannot take
// every buffer in one enter.
//
// When the ring is empty, a multishot receive ends with ENOBUFS and its
// bytes stay in the socket: the connection is armed again once buffers are
// back (armReceives), so no data is dropped, only delayed.

// ringBuf is one provided buffer.
type ringBuf struct {
	h      hugepage.Buffer // the pool slot; zero for other memory
	mem    []byte          // all of it
	priv   bool            // in the engine's own mapping (u.privMem)
	off    int             // bytes the kernel has filled (incremental consumption)
	kernel bool            // in the ring: the kernel may fill it
	shared bool            // a handler retained it: replace it, never reuse it
}

// fillBuffers puts every buffer into the ring (at start, on the loop's
// thread, which owns the pool cache): pool slots while the pool has them,
// then the engine's own mapping.
func (u *uringEngine) fillBuffers(l *Loop) error {
	pooled := 0
	for bid := range u.bufs {
		if l.cache == nil {
			break
		}
		h, err := l.cache.Get(uringBufSize)
		if err != nil {
			break
		}
		u.bufs[bid] = ringBuf{h: h, mem: h.Bytes()[:h.Cap()]}
		pooled++
	}
	if pooled > 0 {
		// The slots the node's loops keep in their rings are not the
		// connections' to share (poolShareLeft): take them out of the
		// class's count, assuming each loop of the pool took as many.
		loops := 0
		for _, s := range l.e.cfg.Loops {
			if s.Pool == l.spec.Pool {
				loops++
			}
		}
		k := l.classOf[bits.Len(uint(uringBufSize-1))]
		l.classCount[k] = max(l.classCount[k]-int32(pooled*loops), 0)
	}
	if k := len(u.bufs) - pooled; k > 0 {
		mem, err := unix.Mmap(-1, 0, k*uringBufSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return os.NewSyscallError("mmap io_uring buffers", err)
		}
		u.privMem = mem
		for i := range k {
			u.bufs[pooled+i] = ringBuf{mem: mem[i*uringBufSize : (i+1)*uringBufSize : (i+1)*uringBufSize], priv: true}
		}
		if l.cache != nil {
			l.log.Info("reactor: io_uring receive buffers outside the pool", "loop", l.idx, "buffers", k, "bytes", k*uringBufSize,
				"why", "the pool has too few buffers of this size (size it with ws.Config.PoolClasses)")
		}
	}
	for bid := range u.bufs {
		u.provide(uint16(bid))
	}
	u.br.Publish()
	return nil
}

// newBuffer gives buffer bid fresh memory (a handler kept its old one) and
// adds it to the ring.
func (u *uringEngine) newBuffer(l *Loop, bid uint16) bool {
	b, h := l.allocLoop(uringBufSize)
	u.bufs[bid] = ringBuf{h: h, mem: b[:cap(b)]}
	u.provide(bid)
	return true
}

// provide adds buffer bid to the ring (visible at the next Publish).
func (u *uringEngine) provide(bid uint16) {
	rb := &u.bufs[bid]
	rb.off, rb.kernel = 0, true
	u.br.Add(rb.mem, bid)
}

// recycle gives back a buffer the kernel is done with and no send points
// into any more: the same memory, or a fresh slot if a handler kept it.
func (u *uringEngine) recycle(l *Loop, bid uint16) {
	rb := &u.bufs[bid]
	if !rb.shared {
		u.provide(bid)
		return
	}
	l.freeLoop(rb.mem, rb.h) // the loop's reference; the handler's keeps it
	u.bufs[bid] = ringBuf{}
	if !u.newBuffer(l, bid) {
		// Out of memory: the ring runs with one buffer fewer until a
		// later recycle finds some (armReceives retries).
		u.bufs[bid].mem = nil
	}
}

// freeBuffers gives the buffers back to the pool once the kernel can no
// longer write them (the ring is unregistered).
func (u *uringEngine) freeBuffers(l *Loop) {
	for bid := range u.bufs {
		rb := &u.bufs[bid]
		if rb.mem != nil && !rb.priv {
			l.freeLoop(rb.mem, rb.h)
		}
		u.bufs[bid] = ringBuf{}
	}
	if u.privMem != nil {
		unix.Munmap(u.privMem)
		u.privMem = nil
	}
}

// armRecv starts c's multishot receive.
func (u *uringEngine) armRecv(c *Conn) bool {
	s := u.sqe()
	if s == nil {
		return false
	}
	s.PrepRecvMultishot(int(c.fd), u.br.Group(), 0, u.recvLimit, uringOp(udRecv, c))
	c.p.ops++
	c.p.state |= uringArmed
	if c.p.state &^= uringLimited; u.recvLimit != 0 {
		c.p.state |= uringLimited
	}
	return true
}

// armReceives arms again the receives that ended while their connection
// stays open (ENOBUFS, or the kernel ended the multishot), once the ring
// has buffers again.
func (u *uringEngine) armReceives(l *Loop) {
	if len(u.rearm) == 0 {
		return
	}
	free := 0
	for bid := range u.bufs {
		if u.bufs[bid].kernel {
			free++
		}
	}
	if free == 0 {
		return // still dry: the next batch's recycling brings some back
	}
	for i, r := range u.rearm {
		if r.live() && r.c.p.state&(uringArmed|uringDirect) == 0 && r.c.flags&fPeerEOF == 0 {
			if !u.armRecv(r.c) {
				// No SQE: keep this one and the rest for the next turn.
				n := copy(u.rearm, u.rearm[i:])
				clear(u.rearm[n:])
				u.rearm = u.rearm[:n]
				return
			}
		}
		u.rearm[i] = connRef{}
	}
	u.rearm = u.rearm[:0]
}

// recvDone handles a receive's completion for c (nil: a stale one, whose
// buffer still counts).
func (u *uringEngine) recvDone(l *Loop, c *Conn, cqe *uring.CQE) {
	var data []byte
	bid := -1
	if cqe.Flags&uring.CQEFBuffer != 0 {
		bid = int(cqe.BufferID())
		rb := &u.bufs[bid]
		n := max(int(cqe.Res), 0)
		data = rb.mem[rb.off : rb.off+n]
		rb.off += n
		if cqe.Flags&uring.CQEFBufMore == 0 {
			// The kernel moved past it: once this epoch's sends are
			// answered, it can go back.
			rb.kernel = false
			u.building.bids = append(u.building.bids, uint16(bid))
		}
	}
	if c == nil {
		return
	}
	more := cqe.Flags&uring.CQEFMore != 0
	if !more {
		c.p.state &^= uringArmed
		defer u.opDone(c)
	}
	if c.flags&fClosed != 0 {
		return
	}
	switch res := cqe.Res; {
	case res > 0 && bid >= 0:
		if c.p.state&uringLimited != 0 {
			u.limitWorks = true
		}
		u.deliver(l, c, bid, data)
	case res == 0:
		c.peerEOF()
		return
	case res == -int32(unix.ENOBUFS):
		count(&l.stats.NoBuffers, 1)
	case res == -int32(unix.ECANCELED):
		// directStart cancelled it: armed again when the direct reads end.
	case res == -int32(unix.EINVAL) && c.p.state&uringLimited != 0 && !u.limitWorks:
		// A kernel before 6.17 refuses the limit: arm without it (the
		// receives armed with it in the same turn fail too). Once a
		// limited receive has brought bytes, the kernel takes the limit
		// and an EINVAL is an error like any other.
		if u.recvLimit != 0 {
			l.log.Info("reactor: io_uring receives without a limit per turn", "loop", l.idx,
				"why", "the kernel refuses IORING_RECV_MSHOT_LIM (Linux 6.17)")
			u.recvLimit = 0
		}
	case res < 0:
		c.closeNow(os.NewSyscallError("recv", unix.Errno(-res)))
		return
	}
	if !more && c.flags&(fClosed|fPeerEOF) == 0 && c.p.state&uringDirect == 0 {
		u.rearm = append(u.rearm, connRef{c, c.gen})
	}
}

// deliver hands the bytes a receive put into buffer bid to the handler.
// While it runs, the buffer is the loop's read buffer as far as
// RetainRead is concerned, and sends that point into it need no copy.
//
// A receive larger than Config.ReadBufferSize (a provided buffer holds 64
// KiB) is handed over in pieces of that size, each counted as a read, so
// that the handler never sees more at once than it would from the epoll
// engine's read buffer.
func (u *uringEngine) deliver(l *Loop, c *Conn, bid int, data []byte) {
	rb := &u.bufs[bid]
	rbuf, rbufH := l.rbuf, l.rbufH
	l.rbuf, l.rbufH, l.rbufShared = rb.mem, rb.h, false
	u.cur, u.curBI = rb.mem, bid
	for most := l.e.cfg.ReadBufferSize; len(data) > 0; {
		n := min(len(data), most)
		count(&l.stats.ReadCalls, 1)
		count(&l.stats.BytesIn, uint64(n))
		// No room in front: the bytes there are other receives'.
		if !l.deliver(c, data[:n:n], 0, n) {
			break
		}
		data = data[n:]
	}
	if l.rbufShared {
		rb.shared = true
	}
	l.rbuf, l.rbufH, l.rbufShared = rbuf, rbufH, false
	u.cur, u.curBI = nil, -1
	if l.dr != nil && c.flags&(fClosed|fWriteShut) == 0 && c.inLen() == 0 && len(l.dr.ReadTarget(c)) > 0 {
		u.directStart(c)
	}
}

// directStart puts c on the list of connections read straight into a
// DirectReader's memory (afterBatch) and cancels its multishot receive, so
// that the kernel stops filling provided buffers with the payload that
// ws would then copy. Bytes the receive still delivers before the cancel
// lands come in order through deliver, as before.
func (u *uringEngine) directStart(c *Conn) {
	if c.p.state&uringDirect != 0 {
		return // on the list already
	}
	if c.p.state&uringArmed != 0 {
		s := u.sqe()
		if s == nil {
			return // no room for the cancel: the receive goes on, and nothing reads beside it
		}
		s.PrepCancel(uringOp(udRecv, c), 0, uringOp(udDirectCancel, c))
		c.p.ops++
	} // else it ended already (ENOBUFS, its limit): armReceives leaves it alone meanwhile
	c.p.state |= uringDirect
	u.direct = append(u.direct, connRef{c, c.gen})
}

// directWait waits for c's next bytes with a one-shot poll, which fills no
// buffer: its completion puts c back on the direct reads.
func (u *uringEngine) directWait(c *Conn) {
	s := u.sqe()
	if s == nil {
		u.directEnd(c) // the multishot receive takes over
		return
	}
	s.PrepPoll(int(c.fd), unix.POLLIN|unix.POLLRDHUP, uringOp(udPoll, c))
	c.p.ops++
	c.p.state |= uringPolling
}

// directPolled handles the completion of directWait's poll: c has bytes
// (or an error or EOF, which the next read tells), or it was closed (the
// close cancels the poll).
func (u *uringEngine) directPolled(c *Conn) {
	if c == nil {
		return
	}
	defer u.opDone(c)
	c.p.state &^= uringPolling
	if c.flags&fClosed == 0 && c.p.state&uringDirect != 0 {
		u.direct = append(u.direct, connRef{c, c.gen})
	}
}

// directEnd takes c off the direct reads: its receive is armed again (or
// will be, when the cancelled one has ended).
func (u *uringEngine) directEnd(c *Conn) {
	c.p.state &^= uringDirect
	if c.p.state&uringArmed == 0 && c.flags&(fClosed|fPeerEOF) == 0 {
		u.rearm = append(u.rearm, connRef{c, c.gen})
	}
}
