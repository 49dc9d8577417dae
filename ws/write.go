package ws

import (
	"time"

	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// reply queues a frame unless the client is a slow consumer: bytes the
// kernel already refused (the write queue) plus this frame would pass
// MaxWriteQueue. This turn's replies that have not been offered to the
// kernel yet do not count, so a client that reads keeps up however many
// messages it pipelines.
func (c *Conn) reply(op OpCode, p []byte) error {
	if c.rc.Queued()+len(p) > c.ls.s.limits.Load().MaxWriteQueue {
		c.fail(ErrSlowConsumer)
		return ErrSlowConsumer
	}
	c.writeFrame(op, p)
	return nil
}

// writeFrame queues a final frame of type op carrying p: the header and p
// as two writes, or as one when p is the payload of the message being
// delivered and still lies in the read buffer behind its client header
// (headerRoom). Nothing of p is copied either way.
func (c *Conn) writeFrame(op OpCode, p []byte) {
	if frame := c.headerRoom(p); frame != nil {
		// The client header is dead once parsed and is 4 bytes (the mask
		// key) longer than ours: write ours at its end, so that header
		// and payload leave as one contiguous write.
		var hdr [wire.MaxHeaderSize]byte
		n := wire.PutHeader(hdr[:], true, op, len(p))
		start := len(frame) - len(p) - n
		copy(frame[start:], hdr[:n])
		c.rc.Write(frame[start:])
		return
	}
	hdr := c.rc.Scratch(wire.MaxHeaderSize)
	n := wire.PutHeader(hdr, true, op, len(p))
	c.rc.Write(hdr[:n])
	c.rc.Write(p)
}

// headerRoom returns the whole client frame when p is exactly the payload
// of the message being delivered to c (or, for a compressed message, its
// deflate data) and the frame is in the read buffer (Event.frame), and nil
// otherwise. It hands the frame out once: a second reply of the same
// payload (a broadcast) must not rewrite bytes the first reply's write
// points at.
func (c *Conn) headerRoom(p []byte) []byte {
	ev := &c.ls.ev
	payload := ev.Data
	if ev.Compressed {
		payload = ev.raw
	}
	if ev.Conn != c || ev.frame == nil || len(p) == 0 || !sameBytes(p, payload) {
		return nil
	}
	frame := ev.frame
	ev.frame = nil
	return frame
}

// fail sends a close frame for err and closes the connection gracefully:
// RFC 6455 §7.1.7, "Fail the WebSocket Connection".
func (c *Conn) fail(err *CloseError) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosed
	c.closeCode = err.Code
	count(&c.ls.c.ClosesSent, 1)
	c.ls.closeCodes[closeCodeSlot(err.Code)].Add(1)
	b := c.rc.Scratch(wire.MaxHeaderSize + 125)
	n := 0 // 1005 means "no status": an empty close payload
	if err.Code != StatusNoStatusRcvd {
		n = wire.PutClose(b[2:], err.Code, err.Reason)
	}
	// n <= 125 always takes the 2-byte header, in front of the payload.
	wire.PutHeader(b, true, OpClose, n)
	c.rc.Write(b[:2+n])
	c.rc.CloseGracefully()
}

// keepalive runs at a connection's idle deadline: after IdleTimeout/2 of
// silence it sends a ping (RFC 6455 §5.5.2, a live client answers with a
// pong, which counts as activity); after IdleTimeout of silence it closes
// with 1001.
func (c *Conn) keepalive() {
	idle := c.ls.s.limits.Load().IdleTimeout
	if idle <= 0 {
		return // turned off by a reload
	}
	silent := time.Duration(c.rc.Loop().NowNano() - c.lastRead)
	switch {
	case silent >= idle:
		count(&c.ls.c.Timeouts, 1)
		c.fail(errIdle)
	case silent >= idle/2 && !c.pinged:
		c.pinged = true
		c.writeFrame(OpPing, nil)
		c.rc.SetDeadline(time.Unix(0, c.lastRead).Add(idle))
	case c.pinged:
		c.rc.SetDeadline(time.Unix(0, c.lastRead).Add(idle))
	default:
		c.rc.SetDeadline(time.Unix(0, c.lastRead).Add(idle / 2))
	}
}

// armDeadline sets the deadline c's state calls for under lim: the
// handshake timeout from when c connected, or the idle keepalive from its
// last read (none when IdleTimeout is 0). Control.Reload calls it for every
// open connection, so that new timeouts apply to them too.
func (c *Conn) armDeadline(lim *Limits) {
	switch c.state {
	case stateHandshake:
		c.rc.SetDeadline(time.Unix(0, c.lastRead).Add(lim.HandshakeTimeout))
	case stateOpen:
		switch {
		case lim.IdleTimeout <= 0:
			c.rc.SetDeadline(time.Time{})
			c.pinged = false
		case c.pinged:
			c.rc.SetDeadline(time.Unix(0, c.lastRead).Add(lim.IdleTimeout))
		default:
			c.rc.SetDeadline(time.Unix(0, c.lastRead).Add(lim.IdleTimeout / 2))
		}
	}
}
