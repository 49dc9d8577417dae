package reactor

import (
	"net"
	"sync/atomic"
	"time"
	"unsafe"
)

// Connection flags, owned by the loop thread.
const (
	fClosed      uint8 = 1 << iota // closed and unregistered
	fClosing                       // shut the write side once the queue drains
	fWriteShut                     // write side shut; reading until EOF or deadline
	fPollOut                       // waiting for writability (epoll)
	fTimed                         // in the loop's deadline list
	fPeerEOF                       // the peer shut its write side
	fEstablished                   // the handler called Established: no longer pending
)

// Conn is one accepted connection, owned by one loop. Its methods must be
// called on that loop's thread (from Handler callbacks or Fn tasks); to act
// on it from elsewhere, Post a Task to c.Loop().
//
// An idle connection costs 80 bytes here on Linux, a size class of the Go
// allocator (memory per idle connection is one of the figures the
// benchmarks rank; TestConnSize holds it): what only a connection holding
// bytes needs lives in a connIO, taken when needed and given back when
// empty; whether it is picked for eviction, in the peer table (peer.go).
type Conn struct {
	loop     *Loop
	io       *connIO // nil while c holds no bytes
	peer     *peer   // c's client address's share; set before OnOpen
	ctx      any
	deadline int64        // unix nanoseconds; 0 = none
	mem      atomic.Int64 // buffer bytes charged to c (read by other loops choosing whom to evict)
	fd       sockFD
	p        connPlat // not last: a trailing zero-size field would be padded
	gen      uint32
	slot     uint32 // in Loop.conns (table.go)
	pidx     int32  // place in peer.list
	flags    uint8
	kout     uint16 // bytes handed to the kernel since its hold was last timed, up to kernWatchMin (watchKernel)
}

// connIO is the part of a connection that only holds bytes: input kept
// between reads, output the socket would not take, and the front of the
// write queue being sent (epoll's writes, an asynchronous send's bytes).
type connIO struct {
	in      Buf // unconsumed input kept between reads (copy, counted)
	out     Buf // unsent output (copied or adopted, counted); out[outHead:] is pending
	outHead int
	sent    int // bytes the peer had not taken at the last check (see progressed)
	// wstall is the loop time output last moved while some was queued, or
	// held by the kernel after a large write (0: neither); Config.WriteStallTimeout
	// after it, c is evicted.
	wstall int64
	// kern: a large write left output in the kernel and the sweep asks it
	// whether the peer takes any (watchKernel); acked is the peer's
	// acknowledged bytes at the last check.
	kern   bool
	acked  uint64
	flight sendQueue // the front of the write queue, being sent (sendq.go)
}

// ioSpares bounds the connIOs a loop keeps for reuse.
const ioSpares = 256

// ioState returns c's connIO, taking one when c has none.
func (c *Conn) ioState() *connIO {
	if c.io == nil {
		c.io = c.loop.ioSpare.Get()
	}
	return c.io
}

// ioRelease gives c's connIO back once it holds nothing: no bytes, and
// no write stall clock (wstall, stopped by outputDone, kernelMoved or
// closeNow, which release it then). A clock dropped with it would leave
// output the kernel still holds untimed: an asynchronous send's queue that
// drained into the kernel's buffer frees its flight first (flightDone),
// and outputDone must still see that the queue was there to hand the
// timing to the kernel's watch.
func (c *Conn) ioRelease() {
	io := c.io
	if io == nil || cap(io.in.b) > 0 || cap(io.out.b) > 0 || len(io.flight.b) > 0 || cap(io.flight.q.b) > 0 || io.kern || io.wstall != 0 {
		return
	}
	c.io = nil
	c.loop.ioSpare.Put(io)
}

// queuedOut is the part of the write queue still in c.io.out.
func (c *Conn) queuedOut() int {
	if c.io == nil {
		return 0
	}
	return c.io.out.Len() - c.io.outHead
}

// inFlight is the part of the queue an asynchronous send has taken out of
// c.io.out and the kernel has not taken yet: it counts against the write
// queue limit, and new output queues behind it.
func (c *Conn) inFlight() int {
	if c.io == nil {
		return 0
	}
	return len(c.io.flight.b)
}

// Loop is the loop that owns c.
func (c *Conn) Loop() *Loop { return c.loop }

// Gen is c's generation, for Task.Gen.
func (c *Conn) Gen() uint32 { return c.gen }

// Context returns the value stored with SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext stores the upper layer's per-connection state.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Closed reports whether c has been closed.
func (c *Conn) Closed() bool { return c.flags&fClosed != 0 }

// RemoteAddr is the peer's address (one getpeername call).
func (c *Conn) RemoteAddr() net.Addr { return c.remoteAddr() }

// Write queues b to be sent with the rest of this turn's replies in one
// gather write. b is not copied: it must stay unchanged until the handler
// callback that called Write returns (the loop flushes before it reuses its
// read buffer). When earlier output is still queued because the peer is
// slow, b is copied behind it, to keep order.
func (c *Conn) Write(b []byte) {
	if len(b) == 0 || c.flags&(fClosed|fWriteShut|fClosing) != 0 {
		return
	}
	if c.Queued() > 0 {
		c.queue(b) // copy: earlier output still waits for the socket
		return
	}
	l := c.loop
	l.claim(c)
	if l.niov == len(l.iov) {
		c.flush()
		if c.Queued() > 0 || c.flags&fClosed != 0 {
			c.queue(b)
			return
		}
		l.pending = c
	}
	l.iov[l.niov] = b
	l.niov++
	l.iovBytes += len(b)
}

// Scratch returns n bytes of loop-owned memory that stay valid until c's
// queued writes are flushed: room for a frame header to pass to Write. It
// also makes room for two more Writes, so that the header and its payload
// are queued without a flush between them (a flush recycles the scratch
// memory).
func (c *Conn) Scratch(n int) []byte {
	l := c.loop
	l.claim(c)
	if l.scrOff+n > len(l.scratch) || l.niov+2 > len(l.iov) {
		c.flush()
		l.pending = c
	}
	b := l.scratch[l.scrOff : l.scrOff+n : l.scrOff+n]
	l.scrOff += n
	return b
}

// Flush writes what c has queued now instead of at the end of the callback.
func (c *Conn) Flush() {
	if c.loop.pending == c {
		c.flush()
	}
}

// Queued is the number of bytes waiting in c's write queue because the
// kernel would not take them: what a slow-consumer limit measures. It does
// not count this turn's replies, which have not been offered yet.
func (c *Conn) Queued() int { return c.queuedOut() + c.inFlight() }

// Buffered is the number of bytes queued for c and not yet taken by the
// kernel, this turn's pending replies included.
func (c *Conn) Buffered() int {
	n := c.Queued()
	if c.loop.pending == c {
		n += c.loop.iovBytes
	}
	return n
}

// FreeAfterFlush empties b, which must be c's, now and gives its memory
// back once c's pending writes, which may point into it, are sent: a reply
// can reference a buffer the protocol layer is done with, without forcing
// an early write. If the kernel does not take such a reply whole, the
// buffer becomes c's write queue instead of being copied (Stats.AdoptedOut).
func (c *Conn) FreeAfterFlush(b *Buf) {
	l := c.loop
	if l.pending != c || b.b == nil {
		b.Free(c)
		return
	}
	l.deferred = append(l.deferred, deferredBuf{c, *b})
	*b = Buf{}
}

// deferredBuf is a Buf freed once its connection's pending writes are sent.
type deferredBuf struct {
	c *Conn
	b Buf
}

// CloseGracefully sends everything queued, then shuts the write side and
// reads (discarding) until the peer closes or the linger timeout passes.
// This is the close a WebSocket server does after its close frame (RFC 6455
// §7.1.1: the server closes the TCP connection first, but must not reset it
// while the peer may still be reading).
func (c *Conn) CloseGracefully() {
	if c.flags&(fClosed|fClosing|fWriteShut) != 0 {
		return
	}
	c.Flush()
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosing
	if !c.outputPending() {
		c.shutdownWrite()
		return
	}
	// A peer that does not read would keep the queue, and c, forever: at
	// the deadline, c is cut unless the peer took some bytes since now.
	c.lingerDeadline()
	c.progressed() // the baseline
}

// Abort closes c at once; queued output is dropped.
func (c *Conn) Abort(err error) {
	if c.flags&fClosed == 0 {
		c.closeNow(err)
	}
}

// SetDeadline calls Handler.OnDeadline if c is still open at t (while c is
// closing, it closes c with ErrTimeout instead); the zero time clears it.
// The resolution is about 250 ms.
func (c *Conn) SetDeadline(t time.Time) {
	if t.IsZero() {
		c.deadline = 0
		return
	}
	c.deadline = t.UnixNano()
	c.loop.track(c)
}

func (c *Conn) lingerDeadline() {
	c.SetDeadline(time.Unix(0, c.loop.now).Add(c.loop.e.cfg.LingerTimeout))
}

// expired acts on a deadline that passed. A closing connection's is the
// reactor's own linger deadline: a peer still reading the replies queued
// before the close gets more time, one that stopped reading is cut. Any
// other goes to the handler.
func (c *Conn) expired() {
	if c.flags&(fClosing|fWriteShut|fPeerEOF) == 0 {
		c.loop.h.OnDeadline(c)
		c.Flush()
		return
	}
	if c.flags&fClosing != 0 && c.progressed() {
		c.lingerDeadline()
		return
	}
	c.closeNow(ErrTimeout)
}

// outputPending reports whether earlier output still waits for the socket
// (queued, or in an asynchronous send the kernel has not answered yet):
// new output must queue behind it.
func (c *Conn) outputPending() bool { return c.Queued() > 0 || c.sending() }

// flush sends the loop's gathered writes for c with one gather write and
// queues the part the kernel did not take.
func (c *Conn) flush() {
	l := c.loop
	bufs := l.iov[:l.niov]
	l.niov, l.pending, l.iovBytes = 0, nil, 0
	defer l.resetScratch()
	defer clear(bufs) // let the GC have the buffers
	if len(bufs) == 0 || c.flags&fClosed != 0 {
		return
	}
	n := 0
	if c.Queued() == 0 { // else the engine holds earlier output (sending): queue behind it
		var err error
		if n, err = c.send(bufs); err != nil {
			c.closeNow(err)
			return
		}
		if n > 0 {
			count(&l.stats.WriteCalls, 1)
			count(&l.stats.BytesOut, uint64(n))
		}
	}
	sent := n
	for i, b := range bufs { // queue the unsent tail, in order
		if n >= len(b) {
			n -= len(b)
			continue
		}
		if c.flags&fClosed != 0 {
			return
		}
		if !l.adopt(c, b[n:], bufs[i+1:]) {
			c.queue(b[n:]) // copy: the socket would block; may close c (ErrNoMemory)
		}
		n = 0
	}
	if c.flags&fClosed == 0 && c.queuedOut() > 0 {
		c.startOutput()
	}
	if sent > 0 {
		c.kout = uint16(min(int(c.kout)+sent, kernWatchMin-1))
		if c.kout == kernWatchMin-1 {
			c.watchKernel()
		}
	}
}

// queue appends b to the write queue: the slow path when the kernel would
// not take everything.
func (c *Conn) queue(b []byte) {
	l := c.loop
	io := c.ioState()
	out := &io.out
	if rest := out.Len() - io.outHead; io.outHead > 0 && out.Len()+len(b) > out.Cap() && io.outHead >= rest {
		// copy: move the unsent part to the front rather than grow behind
		// more bytes already written than it holds.
		copy(out.Bytes(), out.Bytes()[io.outHead:])
		out.Truncate(rest)
		io.outHead = 0
		count(&l.stats.CopiedOut, uint64(rest))
	}
	c.startStallClock()
	// A queue outgrowing the pools is reserved at once for all the upper
	// layer lets it hold (Config.QueueLimit): it is never regrown.
	if !out.Append(c, b, int(l.e.queueLimit.Load())) { // copy: the socket would block
		c.closeNow(ErrNoMemory)
		return
	}
	count(&l.stats.CopiedOut, uint64(len(b)))
}

// adopt queues tail, the unsent rest of a reply, without copying it when it
// lies in a region of c's that is to be freed after this flush
// (FreeAfterFlush: a large message the reply echoes) and nothing is queued
// yet: that region becomes the write queue. (A smaller buffer's tail is
// short enough to copy.) later are the writes after tail; if
// any of them points into the same buffer the queue could overwrite it, so
// the tail is copied after all.
func (l *Loop) adopt(c *Conn, tail []byte, later [][]byte) bool {
	i := adoptable(c, l.deferred, tail, later)
	if i < 0 {
		return false
	}
	b := l.deferred[i].b
	last := len(l.deferred) - 1
	l.deferred[i], l.deferred[last] = l.deferred[last], deferredBuf{}
	l.deferred = l.deferred[:last]
	c.adoptQueue(b, tail)
	// Sent from where it lies: the writes after it go to a new buffer.
	c.startOutput()
	return true
}

// adoptable returns the index in held of the buffer c's write queue may
// adopt tail from (see Loop.adopt), or -1.
func adoptable(c *Conn, held []deferredBuf, tail []byte, later [][]byte) int {
	if c.Queued() > 0 {
		return -1
	}
	for i := range held {
		d := &held[i]
		if d.c != c || d.b.r == nil || d.b.r.shared || !d.b.contains(tail) {
			continue
		}
		for _, p := range later {
			if d.b.contains(p) {
				return -1
			}
		}
		return i
	}
	return -1
}

// adoptQueue makes b, which holds tail, c's write queue, its unsent part
// tail (no copy; counted in AdoptedOut).
func (c *Conn) adoptQueue(b Buf, tail []byte) {
	io := c.ioState()
	io.out.Free(c)
	io.out = b
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(tail))) - uintptr(unsafe.Pointer(unsafe.SliceData(io.out.b))))
	io.out.Truncate(off + len(tail))
	io.outHead = off
	c.startStallClock()
	count(&c.loop.stats.AdoptedOut, uint64(len(tail)))
}

// startStallClock starts timing a write stall when output begins to queue
// (outputDone stops it).
func (c *Conn) startStallClock() {
	if io := c.ioState(); io.wstall == 0 {
		io.wstall = c.loop.now
		c.loop.track(c)
	}
}

// kernWatchMin is the output from which the kernel's hold on c's output
// is timed too (watchKernel): one write of that much, or as much in
// smaller writes since the last watch.
const kernWatchMin = 64 << 10

// watchKernel times a write stall for output the kernel holds. A large
// reply may be taken whole into the socket's send buffer (which grows to
// several MiB), and the small replies behind it keep fitting into its last
// segment, so nothing ever queues here and a peer that never reads would
// never be timed; so may many small replies. After kernWatchMin bytes
// handed to the kernel (in one write or in several: c.kout), and when a
// write queue has drained into the kernel (outputDone), the sweep asks
// the kernel whether the peer acknowledged anything (kernelMoved) until it
// holds nothing more of c's. That costs a few system calls per
// kernWatchMin of output.
func (c *Conn) watchKernel() {
	c.kout = 0
	if c.flags&fClosed != 0 || c.loop.e.stall.Load() <= 0 {
		return
	}
	io := c.ioState()
	if io.kern {
		return
	}
	a, ok := c.acked()
	if !ok {
		c.ioRelease()
		return
	}
	io.kern, io.acked = true, a
	if io.wstall == 0 {
		io.wstall = c.loop.now
		c.loop.track(c)
	}
}

// kernelMoved updates the stall clock of a connection watchKernel watches:
// the clock starts again when the peer acknowledged bytes since the last
// check, and the watch ends when the kernel holds none of c's output (or
// the stall timeout was set to 0 since).
func (c *Conn) kernelMoved() {
	io := c.io
	if io == nil || !io.kern {
		return
	}
	a, ok := c.acked()
	k, ok2 := c.unsent()
	switch {
	case !ok || !ok2 || k == 0 || c.loop.e.stall.Load() <= 0:
		io.kern = false
		if c.Queued() == 0 && !c.sending() {
			io.wstall = 0
			c.ioRelease()
		}
	case a != io.acked:
		io.acked = a
		io.wstall = c.loop.now
	}
}

// outputMoved notes that the kernel took queued bytes: the stall clock
// starts again.
func (c *Conn) outputMoved() {
	if io := c.io; io != nil && io.wstall != 0 {
		io.wstall = c.loop.now
	}
}

// wrote counts a write of n queued bytes.
func (c *Conn) wrote(n int) {
	count(&c.loop.stats.WriteCalls, 1)
	count(&c.loop.stats.BytesOut, uint64(n))
	c.outputMoved()
}

// outputDone runs when the write queue is empty again: its memory goes
// back, and a close that waited for it goes on.
func (c *Conn) outputDone() {
	queued := false
	if io := c.io; io != nil {
		queued = io.wstall != 0
		io.out.Free(c)
		io.outHead = 0
		if !io.kern { // else the kernel still holds output of a large write
			io.wstall = 0
		}
		if c.flags&fClosing == 0 {
			c.ioRelease() // a close keeps its progress baseline (sent)
		}
	}
	if c.flags&(fClosing|fPeerEOF) != 0 {
		c.shutdownWrite()
		return
	}
	if queued {
		// The queue's tail is in the kernel now, as much as a large
		// write leaves there: time it until the peer takes it.
		c.watchKernel()
	}
}

// claim makes c the connection whose writes the loop is collecting, sending
// another connection's first. Only one connection's writes are pending at a
// time, and a flush recycles the scratch memory, so Scratch claims before it
// hands out bytes.
func (l *Loop) claim(c *Conn) {
	if l.pending != c {
		if l.pending != nil {
			l.pending.flush()
		}
		l.pending = c
	}
}

// dropPending discards the writes gathered for c, which is closing.
func (l *Loop) dropPending(c *Conn) {
	if l.pending == c {
		clear(l.iov[:l.niov])
		l.niov, l.pending, l.iovBytes = 0, nil, 0
		l.resetScratch()
	}
}

// resetScratch runs after every flush (and when a connection's pending
// writes are dropped): the scratch memory and the buffers kept alive for
// the flushed writes (Conn.FreeAfterFlush) are free again.
func (l *Loop) resetScratch() {
	l.scrOff = 0
	for i := range l.deferred {
		d := &l.deferred[i]
		d.b.Free(d.c)
		*d = deferredBuf{}
	}
	l.deferred = l.deferred[:0]
}

// peerEOF handles the peer's FIN: close now, unless replies are still
// queued, in which case they are sent first (a half-closed peer may still
// read).
func (c *Conn) peerEOF() {
	if !c.outputPending() || c.flags&fWriteShut != 0 {
		c.closeNow(ErrPeerClosed)
		return
	}
	c.flags |= fPeerEOF
	c.stopInput()
	c.lingerDeadline()
}

// shutdownWrite sends FIN after the last queued byte and waits (bounded by
// the linger timeout) for the peer to close. With output still queued it
// only marks c closing; outputDone calls again when the queue is empty.
func (c *Conn) shutdownWrite() {
	if c.outputPending() {
		c.flags |= fClosing
		c.lingerDeadline()
		c.progressed() // the baseline the linger deadline compares with
		return
	}
	if c.flags&fPeerEOF != 0 {
		c.closeNow(ErrPeerClosed)
		return
	}
	c.flags = c.flags&^fClosing | fWriteShut
	if err := c.shutWrite(); err != nil {
		c.closeNow(err)
		return
	}
	c.lingerDeadline()
}

// closeNow unregisters and closes c, gives its buffers back and tells the
// handler.
func (c *Conn) closeNow(err error) {
	if c.flags&fClosed != 0 {
		return
	}
	l := c.loop
	l.dropPending(c)
	c.flags |= fClosed
	c.closeSocket()
	if io := c.io; io != nil {
		io.in.Free(c)
		io.out.Free(c)
		io.outHead, io.sent, io.wstall, io.kern = 0, 0, 0, false
		c.ioRelease() // unless a send the kernel holds still points into it
	}
	atomic.AddInt64(&l.stats.Conns, -1)
	l.h.OnClose(c, err)
	l.leave(c)
}

// evict closes c for why: ErrStalled (its peer took none of its queued
// output for Config.WriteStallTimeout) or ErrNoMemory (it holds more than
// its share while buffer memory is short). The handler may first queue a
// last message and give back what it holds (Handler.OnEvict); then c is
// closed at once unless it is closing gracefully with nothing queued but
// that message.
func (c *Conn) evict(why error) {
	if c.flags&fClosed != 0 {
		return
	}
	l := c.loop
	if why == ErrStalled {
		count(&l.stats.Stalled, 1)
	} else {
		count(&l.stats.Evicted, 1)
	}
	l.h.OnEvict(c, why)
	c.Flush()
	if c.flags&fClosed == 0 && (why == ErrStalled || c.Queued() > 0 || c.flags&(fClosing|fWriteShut) == 0) {
		c.closeNow(why)
	}
}

// stalled reports whether c's queued output has not moved for the write
// stall timeout (a closing connection has its linger deadline instead).
func (c *Conn) stalled(now int64) bool {
	d := c.loop.e.stall.Load()
	return c.io != nil && c.io.wstall != 0 && d > 0 && now-c.io.wstall >= d && c.flags&(fClosing|fWriteShut|fPeerEOF) == 0
}

// progressed reports whether the peer took any of c's output since the last
// call: the bytes the kernel holds unsent plus our queue shrank. A slow
// reader keeps moving; a peer that stopped does not.
func (c *Conn) progressed() bool {
	k, ok := c.unsent()
	if !ok {
		return false
	}
	io := c.ioState()
	pending := k + c.Queued()
	moved := pending < io.sent
	io.sent = pending
	return moved
}
