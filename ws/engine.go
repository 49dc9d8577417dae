package ws

import (
	"errors"
	"sync/atomic"

	"github.com/hioload-ws/hioload-ws/reactor"
)

// engineHandler is the Server seen by the reactor: its callbacks run on the
// connection's loop thread.
type engineHandler Server

// OnOpen starts the handshake clock of a connection the reactor admitted
// (the connection caps are checked at accept: Config.MaxConns and friends).
func (h *engineHandler) OnOpen(rc *reactor.Conn) {
	s := (*Server)(h)
	c := &Conn{rc: rc, ls: &s.loops[rc.Loop().Index()], lastRead: rc.Loop().NowNano()}
	rc.SetContext(c)
	c.armDeadline(s.limits.Load())
}

// OnEvict sends the last word to a connection the reactor is about to
// close: 1008 to a client that stopped reading (it will most likely never
// see it), 1013 to one holding more buffer memory than its share while
// memory is short, after giving back the message it was sending.
func (h *engineHandler) OnEvict(rc *reactor.Conn, why error) {
	c := rc.Context().(*Conn)
	if c.state != stateOpen {
		return
	}
	if why == reactor.ErrStalled {
		c.fail(errStalled)
		return
	}
	if c.in != nil {
		c.in.buf.Free(rc)
		c.in = nil
	}
	c.fail(errEvicted)
}

// OnDeadline drops a handshake that took too long, and keeps an idle
// connection alive with a ping, or closes it with 1001 when it stays silent.
func (h *engineHandler) OnDeadline(rc *reactor.Conn) {
	c := rc.Context().(*Conn)
	switch c.state {
	case stateHandshake:
		count(&c.ls.c.Timeouts, 1)
		rc.Abort(reactor.ErrTimeout)
	case stateOpen:
		c.keepalive()
	}
}

func (h *engineHandler) OnRead(rc *reactor.Conn, data []byte) int {
	c := rc.Context().(*Conn)
	switch c.state {
	case stateOpen:
		c.lastRead, c.pinged = rc.Loop().NowNano(), false
		return c.readFrames(data)
	case stateHandshake:
		return c.handshake(data)
	}
	return len(data) // closing: the client's bytes after a close are ignored
}

// directMin is the smallest rest of a frame's payload worth reading
// straight into the reassembly buffer rather than through the read buffer,
// and how much of the message must have arrived first: a header and a few
// bytes get no buffer of their own (and no region: there is a bounded number
// of them) before the sender has paid for one.
const directMin = 64 << 10

// ReadTarget lets a large frame's payload bypass the read buffer: once a
// frame's header is parsed and much of its payload is still to come, the
// loop reads it straight into the reassembly buffer (no copy). One read
// takes at most a read buffer's worth (Config.ReadBufferSize), so that a
// large message is read in slices, turn by turn, between the other
// connections of the loop; memory is taken for that slice only.
func (h *engineHandler) ReadTarget(rc *reactor.Conn) []byte {
	c := rc.Context().(*Conn)
	in := c.in
	if c.state != stateOpen || in == nil || in.remain < directMin || in.size() < directMin {
		return nil
	}
	n := int(min(in.remain, int64(c.ls.s.cfg.ReadBufferSize)))
	if !c.grow(n, c.ls.s.limits.Load()) {
		return nil // no memory: the usual path refuses the message
	}
	// Back the target's pages in one go (a page fault each costs far more);
	// no more than the message has brought, so a sender that stops holds
	// at most twice what it sent.
	in.buf.Prefault(rc, int(min(int64(n), in.size())))
	return in.buf.Spare(n)
}

// OnDirect takes n payload bytes read into the target: they are unmasked
// and validated where they lie.
func (h *engineHandler) OnDirect(rc *reactor.Conn, n int) {
	c := rc.Context().(*Conn)
	c.lastRead, c.pinged = rc.Loop().NowNano(), false
	in := c.in
	in.buf.Extend(rc, n)
	c.payload(in.buf.Bytes()[in.buf.Len()-n:])
}

func (h *engineHandler) OnTask(rc *reactor.Conn, t *reactor.Task) {
	rc.Context().(*Conn).runTask(t)
}

func (h *engineHandler) OnShutdown(rc *reactor.Conn) {
	c := rc.Context().(*Conn)
	switch c.state {
	case stateOpen:
		c.fail(errGoingAway)
	case stateHandshake:
		rc.Abort(reactor.ErrShutdown)
	}
}

func (h *engineHandler) OnClose(rc *reactor.Conn, err error) {
	c, _ := rc.Context().(*Conn)
	rc.SetContext(nil)
	if c == nil {
		return
	}
	if c.in != nil {
		c.in.buf.Free(rc)
		c.in = nil // not to the spares: endFrame may still hold it
	}
	c.closeDeflate()
	if c.opened {
		atomic.AddInt64(&c.ls.c.Connections, -1)
		code := c.closeCode
		switch {
		case code == 0:
			code = StatusAbnormalClosure
		case errors.Is(err, reactor.ErrPeerClosed):
			err = nil // the closing handshake's own end, not a failure
		}
		c.event(Event{Kind: CloseEvent, Conn: c, Code: code, Err: err})
	}
	c.state = stateClosed
}

// event hands an open or close event to the handler.
func (c *Conn) event(e Event) error {
	ev := &c.ls.ev
	*ev = e
	err := c.ls.s.handler.Handle(ev)
	*ev = Event{}
	return err
}
