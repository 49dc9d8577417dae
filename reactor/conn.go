package reactor

import (
	"net"
	"sync/atomic"
	"time"
)

// Connection flags, owned by the loop thread.
const (
	fClosed    uint8 = 1 << iota // closed and unregistered
	fClosing                     // shut the write side once the queue drains
	fWriteShut                   // write side shut; reading until EOF or deadline
	fPollOut                     // waiting for writability (epoll)
	fTimed                       // in the loop's deadline list
	fPeerEOF                     // the peer shut its write side
)

// Conn is one accepted connection, owned by one loop. Its methods must be
// called on that loop's thread (from Handler callbacks or Fn tasks); to act
// on it from elsewhere, Post a Task to c.Loop().
type Conn struct {
	loop     *Loop
	p        connPlat // not last: a trailing zero-size field (Linux) would be padded
	fd       int
	gen      uint32
	flags    uint8
	in       Buf // unconsumed input kept between reads (copy, counted)
	out      Buf // unsent output (copy, counted); out[outHead:] is pending
	outHead  int
	sent     int   // bytes the peer had not taken at the last check (see progressed)
	deadline int64 // unix nanoseconds; 0 = none
	ctx      any
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
	if c.outputPending() {
		c.queue(b) // copy: earlier output still waits for the socket
		return
	}
	l := c.loop
	l.claim(c)
	if l.niov == len(l.iov) {
		c.flush()
		if c.outputPending() || c.flags&fClosed != 0 {
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
func (c *Conn) Queued() int { return c.out.Len() - c.outHead + c.inFlight() }

// Buffered is the number of bytes queued for c and not yet taken by the
// kernel, this turn's pending replies included.
func (c *Conn) Buffered() int {
	n := c.Queued()
	if c.loop.pending == c {
		n += c.loop.iovBytes
	}
	return n
}

// FreeAfterFlush empties b now and gives its memory back once c's pending
// writes, which may point into it, are sent: a reply can reference a
// buffer the protocol layer is done with, without forcing an early write.
func (c *Conn) FreeAfterFlush(b *Buf) {
	l := c.loop
	if l.pending != c || b.b == nil {
		b.Free(l)
		return
	}
	l.deferred = append(l.deferred, *b)
	*b = Buf{}
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

// outputPending reports whether earlier output still waits for the socket:
// new output must queue behind it.
func (c *Conn) outputPending() bool { return c.Queued() > 0 }

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
	if !c.outputPending() {
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
	for _, b := range bufs { // queue the unsent tail, in order
		if n >= len(b) {
			n -= len(b)
			continue
		}
		if c.flags&fClosed != 0 {
			return
		}
		c.queue(b[n:]) // copy: the socket would block; may close c (ErrNoMemory)
		n = 0
	}
	if c.flags&fClosed == 0 && c.out.Len() > c.outHead {
		c.startOutput()
	}
}

// queue appends b to the write queue: the slow path when the kernel would
// not take everything.
func (c *Conn) queue(b []byte) {
	if c.outHead > 0 && c.outHead >= c.out.Len()/2 {
		// Move the unsent half to the front rather than grow behind bytes
		// already written.
		c.out.SetLen(copy(c.out.Bytes(), c.out.Bytes()[c.outHead:]))
		c.outHead = 0
	}
	if !c.out.Append(c.loop, b) { // copy: the socket would block
		c.closeNow(ErrNoMemory)
		return
	}
	count(&c.loop.stats.CopiedOut, uint64(len(b)))
}

// wrote counts a write of n queued bytes.
func (c *Conn) wrote(n int) {
	count(&c.loop.stats.WriteCalls, 1)
	count(&c.loop.stats.BytesOut, uint64(n))
}

// outputDone runs when the write queue is empty again: its memory goes
// back, and a close that waited for it goes on.
func (c *Conn) outputDone() {
	c.out.Free(c.loop)
	c.outHead = 0
	if c.flags&(fClosing|fPeerEOF) != 0 {
		c.shutdownWrite()
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
		l.deferred[i].Free(l)
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
	c.in.Free(l)
	c.out.Free(l)
	c.outHead = 0
	atomic.AddInt64(&l.stats.Conns, -1)
	l.h.OnClose(c, err)
}

// progressed reports whether the peer took any of c's output since the last
// call: the bytes the kernel holds unsent plus our queue shrank. A slow
// reader keeps moving; a peer that stopped does not.
func (c *Conn) progressed() bool {
	k, ok := c.unsent()
	if !ok {
		return false
	}
	pending := k + c.out.Len() - c.outHead
	moved := pending < c.sent
	c.sent = pending
	return moved
}
