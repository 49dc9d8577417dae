package reactor

import (
	"net"
	"time"
)

// Connection flags, owned by the loop thread.
const (
	fClosed    uint8 = 1 << iota // closed and unregistered
	fClosing                     // shut the write side once the queue drains
	fWriteShut                   // write side shut; reading until EOF or deadline
	fPollOut                     // registered for writability
	fTimed                       // in the loop's deadline list
	fPeerEOF                     // the peer shut its write side
)

// Conn is one accepted connection, owned by one loop. Its methods must be
// called on that loop's thread (from Handler callbacks or Fn tasks); to act
// on it from elsewhere, Post a Task to c.Loop().
type Conn struct {
	loop     *Loop
	fd       int
	gen      uint32
	flags    uint8
	in       Buf // unconsumed input kept between reads (copy, counted)
	out      Buf // unsent output (copy, counted); out[outHead:] is pending
	outHead  int
	sent     int   // bytes the peer has taken since the last deadline check (see progressed)
	deadline int64 // unix nanoseconds; 0 = none
	ctx      any
}

// Loop is the loop that owns c.
func (c *Conn) Loop() *Loop { return c.loop }

// Gen is c's generation, for Task.Gen.
func (c *Conn) Gen() uint32 { return c.gen }

// Fd is the socket descriptor.
func (c *Conn) Fd() int { return c.fd }

// Context returns the value stored with SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext stores the upper layer's per-connection state.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Closed reports whether c has been closed.
func (c *Conn) Closed() bool { return c.flags&fClosed != 0 }

// RemoteAddr is the peer's address (one getpeername call).
func (c *Conn) RemoteAddr() net.Addr { return c.remoteAddr() }

// Write queues b to be sent with the rest of this turn's replies in one
// writev. b is not copied: it must stay unchanged until the handler callback
// that called Write returns (the loop flushes before it reuses its read
// buffer). When earlier output is still queued because the peer is slow, b
// is copied behind it, to keep order.
func (c *Conn) Write(b []byte) {
	if len(b) == 0 || c.flags&(fClosed|fWriteShut|fClosing) != 0 {
		return
	}
	l := c.loop
	if c.outHead < c.out.Len() {
		c.queue(b) // copy: the socket would block
		return
	}
	l.claim(c)
	if l.plat.niov == len(l.plat.iov) {
		c.flush()
		l.pending = c
	}
	l.plat.setIov(b)
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
	if l.scrOff+n > len(l.scratch) || l.plat.niov+2 > len(l.plat.iov) {
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
// not count this turn's replies, which writev has not offered yet.
func (c *Conn) Queued() int { return c.out.Len() - c.outHead + c.inFlight() }

// FreeAfterFlush empties b now and gives its memory back once c's pending
// writes, which may point into it, are sent: a reply can reference a
// buffer the protocol layer is done with, without forcing an early writev.
func (c *Conn) FreeAfterFlush(b *Buf) {
	l := c.loop
	if l.pending != c || b.b == nil {
		b.Free(l)
		return
	}
	l.deferred = append(l.deferred, *b)
	*b = Buf{}
}

// Buffered is the number of bytes queued for c and not yet taken by the
// kernel, this turn's pending replies included.
func (c *Conn) Buffered() int {
	n := c.Queued()
	if c.loop.pending == c {
		n += c.loop.iovBytes
	}
	return n
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
	if c.outHead >= c.out.Len() {
		c.shutdownWrite()
		return
	}
	// A peer that does not read would keep the queue, and c, forever: at
	// the deadline, c is cut unless the peer took some bytes since now.
	c.SetDeadline(time.Unix(0, c.loop.now).Add(c.loop.e.cfg.LingerTimeout))
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
	c.loop.stats.copiedOut.Add(uint64(len(b)))
}

// claim makes c the connection whose writes the loop is collecting, sending
// another connection's first. Only one connection's iovecs are pending at a
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
