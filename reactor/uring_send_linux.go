//go:build !noreactor

package reactor

import (
	"math"
	"os"

	"github.com/hioload-ws/hioload-ws/internal/uring"
	"golang.org/x/sys/unix"
)

// Sending with io_uring. A flush (Conn.flush) does not call the kernel:
// send records the connection's gathered buffers in the turn's epoch, and
// the next poll turns each record into one SEND or SENDMSG SQE, all
// submitted by the io_uring_enter that also waits for the next
// completions. The sends carry MSG_WAITALL|MSG_DONTWAIT and, unless the
// connection has output queued behind them or is closing, CQE_SKIP_SUCCESS
// (the semantics internal/uring's TestSendSkipSuccess pins down):
// MSG_DONTWAIT makes the kernel finish each send inside the submitting
// io_uring_enter instead of waiting for room (the request is REQ_F_NOWAIT);
// a send the socket takes whole then posts nothing at all, and one it
// takes in part, or not at all, fails, so it posts its CQE with the bytes
// taken (or -EAGAIN), and its tail is queued in order (the copy the epoll
// engine makes when writev is short) and drained by a send that waits for
// room. So a turn costs one io_uring_enter however many connections it
// answers, the enter sleeps right after sending, and only a short send
// wakes the loop.
//
// The kernel reads the bytes at submission, after the handler returned, so
// a send may only point at memory that stays put until then: the provided
// buffer being delivered (a reply from the bytes read, the zero-copy
// echo), buffers freed after the flush (Conn.FreeAfterFlush, a reassembled
// message) and the data of the task being run. Anything else (scratch
// headers, a handler's own memory) is copied into the epoch's chunks
// first, as the kernel would copy it anyway; those copies are counted
// (Stats.CopiedSend). An epoch's memory (its chunks, the buffers it holds,
// provided buffers the kernel is done with) is freed once the enter that
// submitted its sends has returned and their CQEs, if any, are handled.
//
// One send per connection is in the kernel at a time: while one is, the
// connection's output queues behind it (Conn.sending), so that a short
// send's tail is never overtaken.

// epoch is one turn's sends and the memory they point into.
type epoch struct {
	seq    uint32
	done   bool          // the enter that submitted its sends returned
	recs   []sendRec     // the sends, in order
	out    [][]byte      // the sends' buffers, recs' ranges of it
	held   []deferredBuf // freed when the epoch ends (Conn.FreeAfterFlush)
	keep   [][]byte      // heap memory the sends point into (task data): kept alive
	bids   []uint16      // provided buffers the kernel is done with
	chunks []Buf         // copies
	used   int           // bytes used in the last chunk
	iovs   []unix.Iovec
	msgs   []unix.Msghdr
}

// sendRec is one connection's send of the turn.
type sendRec struct {
	c     *Conn
	gen   uint32
	first int // in epoch.out
	n     int
	bytes int
}

// copyChunk is the size of the chunks copies go into.
const copyChunk = 64 << 10

func (u *uringEngine) newEpoch() *epoch {
	var e *epoch
	if n := len(u.spare); n > 0 {
		e, u.spare = u.spare[n-1], u.spare[:n-1]
	} else {
		e = &epoch{}
	}
	u.seq++
	e.seq = u.seq & 0xffffff
	return e
}

// send records c's gathered buffers for the next submission and takes
// them all; the kernel's answer comes with the enter (flushSends,
// sendDone). A second flush of c in the same turn adds to the same send.
func (u *uringEngine) send(c *Conn, bufs [][]byte) (int, error) {
	switch {
	case c.p.rec == 0 && c.p.state&uringSending != 0:
		return 0, nil // c's send is in the kernel: flush queues behind it
	case !u.started:
		return c.writev(bufs)
	}
	l := c.loop
	e := u.building
	var r *sendRec
	if c.p.rec != 0 {
		r = &e.recs[c.p.rec-1]
		if r.n+len(bufs) > maxIov {
			return 0, nil // no room in one sendmsg: queue behind it
		}
		if end := r.first + r.n; end != len(e.out) {
			// Not the last record: move its buffers to the end, so that
			// its iovecs stay one range.
			e.out = append(e.out, e.out[r.first:end]...)
			r.first = len(e.out) - r.n
		}
	}
	// The buffers freed after this flush may back bufs: the epoch keeps
	// them until the sends are done.
	e.held = append(e.held, l.deferred...)
	clear(l.deferred)
	l.deferred = l.deferred[:0]
	first, total := len(e.out), 0
	for _, b := range bufs {
		total += len(b)
		if !u.stable(e, b) {
			cp, ok := u.copyOut(l, e, b)
			if !ok {
				e.out = e.out[:first]
				if r != nil {
					return 0, nil // no memory for the copy: queue behind the send
				}
				// Send what was gathered now, synchronously, while the
				// handler's bytes are valid.
				return c.writev(bufs)
			}
			b = cp
		}
		e.out = append(e.out, b)
	}
	if r != nil {
		r.n += len(bufs)
		r.bytes += total
		return total, nil
	}
	if len(e.recs) == math.MaxUint16 {
		// c.p.rec cannot name another record: send this one now.
		e.out = e.out[:first]
		return c.writev(bufs)
	}
	e.recs = append(e.recs, sendRec{c: c, gen: c.gen, first: first, n: len(bufs), bytes: total})
	c.p.rec = uint16(len(e.recs))
	c.p.state |= uringSending
	c.p.ops++
	return total, nil
}

// stable reports whether b lies in memory that stays put until e's sends
// are answered.
func (u *uringEngine) stable(e *epoch, b []byte) bool {
	if len(u.cur) > 0 && inside(b, u.cur) {
		return true
	}
	if t := u.loop.task; len(t) > 0 && inside(b, t) {
		e.keep = append(e.keep, t)
		return true
	}
	for i := range e.held {
		if e.held[i].b.contains(b) {
			return true
		}
	}
	return false
}

// copyOut copies b into e's chunks.
func (u *uringEngine) copyOut(l *Loop, e *epoch, b []byte) ([]byte, bool) {
	n := len(b)
	if k := len(e.chunks); k == 0 || e.used+n > cap(e.chunks[k-1].b) {
		var ch Buf
		if !ch.Grow(&u.acct, max(n, copyChunk), 0) {
			return nil, false
		}
		e.chunks = append(e.chunks, ch)
		e.used = 0
	}
	ch := &e.chunks[len(e.chunks)-1]
	dst := ch.b[e.used : e.used+n : e.used+n]
	copy(dst, b) // copy: the send outlives the memory it was given
	e.used += n
	count(&l.stats.CopiedSend, uint64(n))
	return dst, true
}

// flushSends prepares an SQE for each send of the turn and puts the epoch
// in flight (the enter that follows submits them).
func (u *uringEngine) flushSends(l *Loop) {
	e := u.building
	u.flying = append(u.flying, e)
	u.building = u.newEpoch()
	if len(e.iovs) < len(e.out) {
		e.iovs = make([]unix.Iovec, len(e.out)+len(e.out)/2)
	}
	for i := range e.recs {
		r := &e.recs[i]
		c := r.c
		if c.gen == r.gen {
			c.p.rec = 0
		}
		if c.gen != r.gen || c.flags&fClosed != 0 {
			// Closed since the flush: its close is already in the SQ.
			r.c = nil
			c.p.state &^= uringSending
			u.opDone(c)
			continue
		}
		s := u.sqe()
		if s == nil {
			u.sendNow(l, e, r) // the kernel takes no SQE: write it out now
			continue
		}
		ud := udSend<<56 | uint64(e.seq)<<32 | uint64(i)
		const flags = unix.MSG_WAITALL | unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
		if r.n == 1 {
			s.PrepSend(int(c.fd), e.out[r.first], flags, ud)
		} else {
			s.PrepSendmsg(int(c.fd), u.msghdr(e, i), flags, ud)
		}
		if c.queuedOut() == 0 && c.flags&(fClosing|fPeerEOF) == 0 {
			// Nothing waits for this send's answer: skip its CQE if
			// it goes out whole.
			s.Flags |= uring.SQECQESkip
		}
	}
}

// msghdr fills the iovecs of record i. The kernel copies the msghdr and
// the iovecs when it takes the SQE (IORING_FEAT_SUBMIT_STABLE), during the
// io_uring_enter that submits it; the epoch holds them until it ends.
func (u *uringEngine) msghdr(e *epoch, i int) *unix.Msghdr {
	if len(e.msgs) < len(e.recs) {
		e.msgs = make([]unix.Msghdr, len(e.recs)+len(e.recs)/2)
	}
	r := &e.recs[i]
	iov := e.iovs[r.first : r.first+r.n]
	for k, b := range e.out[r.first : r.first+r.n] {
		iov[k].Base = &b[0]
		iov[k].SetLen(len(b))
	}
	m := &e.msgs[i]
	*m = unix.Msghdr{Iov: &iov[0]}
	m.SetIovlen(len(iov))
	return m
}

// sendNow writes record r synchronously (the SQ is stuck), as the epoll
// engine would, and queues what the socket did not take.
func (u *uringEngine) sendNow(l *Loop, e *epoch, r *sendRec) {
	c := r.c
	n, err := c.writev(e.out[r.first : r.first+r.n])
	r.c = nil
	c.p.state &^= uringSending
	u.opDone(c)
	if err != nil {
		c.closeNow(err)
		return
	}
	u.sent(c, e, e.out[r.first:r.first+r.n], n, r.bytes)
}

// sendCQEs handles the sends' CQEs among the ready ones before anything
// else, so that the epochs can end (releaseEpochs) before the batch's
// handlers write again to the same connections; the handled CQEs are
// blanked for complete.
func (u *uringEngine) sendCQEs(l *Loop) {
	for i := range u.ring.Ready() {
		cqe := u.ring.CQE(i)
		if cqe.UserData>>56 == udSend {
			u.sendDone(l, uint32(cqe.UserData>>32)&0xffffff, uint32(cqe.UserData), cqe.Res)
			cqe.UserData = 0
		}
	}
}

// sendDone handles the CQE of record idx of epoch seq: a send the socket
// did not take whole, or failed, or one whose connection waits for it.
func (u *uringEngine) sendDone(l *Loop, seq, idx uint32, res int32) {
	var e *epoch
	for _, f := range u.flying {
		if f.seq == seq {
			e = f
			break
		}
	}
	if e == nil || int(idx) >= len(e.recs) || e.recs[idx].c == nil {
		l.log.Error("reactor: io_uring completion for an unknown send", "loop", l.idx, "epoch", seq, "send", idx)
		return
	}
	r := &e.recs[idx]
	c := r.c
	r.c = nil
	c.p.state &^= uringSending
	defer u.opDone(c)
	if c.gen != r.gen || c.flags&fClosed != 0 {
		return
	}
	n := int(res)
	switch {
	case res == -int32(unix.EAGAIN):
		n = 0
	case res < 0:
		c.closeNow(os.NewSyscallError("send", unix.Errno(-res)))
		return
	}
	u.sent(c, e, e.out[r.first:r.first+r.n], n, r.bytes)
}

// sent settles a send of bufs (total bytes) of which the kernel took n:
// the rest goes in front of c's write queue (copy, counted), and the queue
// drains with a send that waits for room.
func (u *uringEngine) sent(c *Conn, e *epoch, bufs [][]byte, n, total int) {
	l := c.loop
	if n > 0 {
		c.outputMoved()
	}
	if n < total {
		// flush counted every byte as written: take back the unsent ones.
		count(&l.stats.BytesOut, ^uint64(total-n-1))
		if !u.requeue(c, e, bufs, n) {
			return
		}
	}
	if c.queuedOut() > 0 {
		u.startOutput(c)
		return
	}
	c.outputDone()
}

// requeue puts the unsent tail of bufs (past n bytes) in front of what c
// queued meanwhile. A tail that lies in a large message's region the
// epoch holds for c (the echo of a message freed after the flush) becomes
// the write queue where it lies, as the epoll engine adopts it (Loop.adopt):
// no copy.
func (u *uringEngine) requeue(c *Conn, e *epoch, bufs [][]byte, n int) bool {
	l := c.loop
	k := n // the first unsent buffer: adopted, if it can be
	for i, b := range bufs {
		if k >= len(b) {
			k -= len(b)
			continue
		}
		if u.adoptTail(c, e, b[k:], bufs[i+1:]) {
			return c.flags&fClosed == 0
		}
		break
	}
	var q Buf
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		if !q.Append(c, b[n:], 0) { // copy: the socket would block
			q.Free(c)
			c.closeNow(ErrNoMemory)
			return false
		}
		count(&l.stats.CopiedOut, uint64(len(b)-n))
		n = 0
	}
	io := c.ioState()
	if rest := io.out.Bytes()[io.outHead:]; len(rest) > 0 {
		if !q.Append(c, rest, 0) { // copy: keep the order
			q.Free(c)
			c.closeNow(ErrNoMemory)
			return false
		}
	}
	count(&l.stats.CopiedOut, uint64(len(io.out.Bytes())-io.outHead))
	io.out.Free(c)
	io.out, io.outHead = q, 0
	c.startStallClock()
	return true
}

// adoptTail makes tail, the unsent rest of c's send, c's write queue
// without a copy when nothing is queued behind it and it lies in a region
// e holds for c that no other holder shares; the writes after it (later)
// are copied behind it, into the region's slack. It reports whether it
// did.
func (u *uringEngine) adoptTail(c *Conn, e *epoch, tail []byte, later [][]byte) bool {
	if e == nil {
		return false
	}
	i := adoptable(c, e.held, tail, later)
	if i < 0 {
		return false
	}
	b := e.held[i].b
	e.held[i] = deferredBuf{}
	c.adoptQueue(b, tail)
	io := c.io
	for _, p := range later {
		if !io.out.Append(c, p, 0) { // copy: behind the adopted tail
			c.closeNow(ErrNoMemory)
			return true
		}
		count(&c.loop.stats.CopiedOut, uint64(len(p)))
	}
	return true
}

// startOutput drains c's write queue with a send that waits for room,
// unless a send of c is in the kernel (its completion starts the drain).
func (u *uringEngine) startOutput(c *Conn) {
	if c.p.state&(uringDraining|uringSending) != 0 || c.queuedOut() == 0 {
		return
	}
	c.io.flight.take(c)
	c.p.state |= uringDraining
	u.postDrain(c)
}

func (u *uringEngine) postDrain(c *Conn) {
	b := c.io.flight.b
	s := u.sqe()
	if s == nil {
		u.later(c)
		return
	}
	// At most writeSlice bytes per send, as epoll writes per writability
	// event: with deferred task work the kernel copies them on the loop's
	// thread, and the loop's other connections take their turns between.
	s.PrepSend(int(c.fd), b[:min(len(b), writeSlice)], unix.MSG_NOSIGNAL, uringOp(udDrain, c))
	c.p.ops++
}

// drainDone handles a drain's completion: more to send, the queue done, or
// the connection gone.
func (u *uringEngine) drainDone(l *Loop, c *Conn, res int32) {
	if c == nil {
		return
	}
	defer u.opDone(c)
	if c.flags&fClosed != 0 || res < 0 && res != -int32(unix.EAGAIN) {
		c.p.state &^= uringDraining
		c.flightDone()
		if c.flags&fClosed == 0 {
			c.closeNow(os.NewSyscallError("send", unix.Errno(-res)))
		}
		return
	}
	// -EAGAIN (the socket took nothing) is no progress: counting it as a
	// write would restart the write stall clock, and a peer that stopped
	// reading would never be evicted.
	more := len(c.io.flight.b) > 0
	if res > 0 {
		more = c.io.flight.sent(c, int(res))
	}
	if more {
		u.postDrain(c)
		return
	}
	c.p.state &^= uringDraining
	c.flightDone()
	if c.queuedOut() > 0 {
		u.startOutput(c)
		return
	}
	c.outputDone()
}

// releaseEpochs ends the epochs, oldest first, whose sends the kernel has
// finished and whose CQEs are handled (sendCQEs): the sends that posted nothing went
// out whole, their connections go on (a queued tail drains, a close goes
// on), the epoch's memory goes back, and the provided buffers the kernel
// is done with go back into the ring.
func (u *uringEngine) releaseEpochs(l *Loop) {
	k := 0
	for ; k < len(u.flying); k++ {
		e := u.flying[k]
		if len(e.recs) > 0 && (!e.done || u.ring.Overflowing()) {
			break
		}
		for i := range e.recs {
			if r := &e.recs[i]; r.c != nil {
				c := r.c
				r.c = nil
				c.p.state &^= uringSending
				u.opDone(c)
				if c.gen == r.gen && c.flags&fClosed == 0 {
					u.sent(c, e, nil, 0, 0)
				}
			}
		}
		u.endEpoch(l, e)
	}
	if k > 0 {
		n := copy(u.flying, u.flying[k:])
		clear(u.flying[n:])
		u.flying = u.flying[:n]
		u.br.Publish()
	}
}

// endEpoch frees e's memory and keeps e for reuse.
func (u *uringEngine) endEpoch(l *Loop, e *epoch) {
	for _, bid := range e.bids {
		u.recycle(l, bid)
	}
	for i := range e.held {
		if d := &e.held[i]; d.c != nil { // nil: adopted as a write queue
			d.b.Free(d.c)
		}
	}
	for i := range e.chunks {
		e.chunks[i].Free(&u.acct)
	}
	clear(e.recs)
	clear(e.out)
	clear(e.keep)
	clear(e.held)
	clear(e.chunks)
	clear(e.iovs)
	e.recs, e.out, e.keep, e.held, e.chunks, e.bids, e.used, e.done = e.recs[:0], e.out[:0], e.keep[:0], e.held[:0], e.chunks[:0], e.bids[:0], 0, false
	u.spare = append(u.spare, e)
}
