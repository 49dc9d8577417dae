package reactor

import (
	"errors"
	"unsafe"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// headroom is space kept in front of each read so that a small leftover
// from the previous read can be put back in front of the new bytes without
// a second buffer.
const headroom = 4096

// errWouldBlock is what Conn.recv returns when no bytes are ready.
var errWouldBlock = errors.New("reactor: would block")

// read does one read on c and hands the bytes to the handler: into the
// loop's read buffer, or straight into the handler's memory when it is a
// DirectReader that asks for it. It reports whether the read returned data
// and c is still open (so a caller may read again).
func (l *Loop) read(c *Conn) bool {
	into := l.rbuf[headroom : headroom+l.e.cfg.ReadBufferSize]
	direct := false
	if l.dr != nil && c.in.Len() == 0 && c.flags&fWriteShut == 0 {
		if t := l.dr.ReadTarget(c); len(t) > 0 {
			direct, into = true, t // zero-copy: a large payload goes where it ends up
		}
	}
	n, err := c.recv(into)
	switch {
	case err == errWouldBlock:
		return false
	case err != nil:
		c.closeNow(err)
		return false
	case n == 0:
		c.peerEOF()
		return false
	}
	count(&l.stats.ReadCalls, 1)
	count(&l.stats.BytesIn, uint64(n))
	if direct {
		l.dr.OnDirect(c, n)
		c.Flush()
		return c.flags&fClosed == 0
	}
	return l.handleRead(c, n)
}

// RetainRead lets a handler keep p, a slice of the bytes OnRead was given,
// past the callback without copying: it adds a reference to the loop's read
// buffer, returns it and p's offset in it, and the loop reads into a fresh
// buffer from then on. ok is false when p is not in a pool read buffer (a
// partial frame kept from an earlier read, or heap memory); the caller then
// copies.
func (l *Loop) RetainRead(p []byte) (h hugepage.Buffer, off int, ok bool) {
	if l.rbufH.IsZero() || len(p) == 0 || !inside(p, l.rbuf) {
		return h, 0, false
	}
	l.rbufH.Retain()
	l.rbufShared = true
	base := uintptr(unsafe.Pointer(unsafe.SliceData(l.rbuf)))
	return l.rbufH, int(uintptr(unsafe.Pointer(unsafe.SliceData(p))) - base), true
}

// newReadBuffer gives the loop a read buffer, dropping the loop's reference
// to the old one (handlers that retained it keep it alive).
func (l *Loop) newReadBuffer() {
	switch {
	case !l.rbufH.IsZero() && l.rbufShared:
		l.rbufH.Release() // not the last reference: a handler holds it
	case l.rbufShared:
		l.e.mem.Add(-int64(cap(l.rbuf))) // heap memory now the handler's (GC)
	default:
		l.freeLoop(l.rbuf, l.rbufH)
	}
	l.rbufShared = false
	b, h := l.allocLoop(headroom + l.e.cfg.ReadBufferSize)
	l.rbuf, l.rbufH = b[:cap(b)], h
}

// handleRead hands the n bytes a read just put after the read buffer's
// headroom to the handler, with what c kept from the previous read in front
// of them, sends the replies, and keeps what the handler did not consume.
// It reports whether c read data and is still open (so a caller may read
// again). Every byte it copies is counted in CopiedIn.
func (l *Loop) handleRead(c *Conn, n int) bool {
	if c.flags&fWriteShut != 0 {
		return true // closing: the peer's bytes are read only to see its EOF
	}
	buf := l.rbuf
	data := buf[headroom : headroom+n]
	if k := c.in.Len(); k > 0 {
		if k <= headroom {
			// copy: a partial frame or request left from the previous read
			// goes back in front of the new bytes.
			copy(buf[headroom-k:headroom], c.in.Bytes())
			data = buf[headroom-k : headroom+n]
			count(&l.stats.CopiedIn, uint64(k))
		} else {
			// copy: the new bytes go behind a leftover too long for the
			// headroom (an upgrade request arriving in pieces).
			if !c.in.Append(c, data, 0) {
				c.closeNow(ErrNoMemory)
				return false
			}
			data = c.in.Bytes()
			count(&l.stats.CopiedIn, uint64(n))
		}
	}
	consumed := l.h.OnRead(c, data)
	c.Flush()
	if c.flags&fClosed != 0 {
		l.renewReadBuffer()
		return false
	}
	rest := data[min(consumed, len(data)):]
	switch {
	case len(rest) == 0:
		c.in.Free(c)
	case c.in.contains(rest):
		if &rest[0] != &c.in.Bytes()[0] {
			copy(c.in.Bytes(), rest) // copy: rest lives in c.in; move it to the front
			count(&l.stats.CopiedIn, uint64(len(rest)))
		}
		c.in.Truncate(len(rest))
	default:
		c.in.Truncate(0)
		if !c.in.Append(c, rest, 0) { // copy: keep the partial tail
			c.closeNow(ErrNoMemory)
			l.renewReadBuffer()
			return false
		}
		count(&l.stats.CopiedIn, uint64(len(rest)))
	}
	l.renewReadBuffer()
	return true
}

// renewReadBuffer replaces the read buffer if a handler kept it.
func (l *Loop) renewReadBuffer() {
	if l.rbufShared {
		l.newReadBuffer()
	}
}
