package ws

import (
	"sync/atomic"

	"github.com/hioload-ws/hioload-ws/reactor"
)

// engineHandler is the Server seen by the reactor: its callbacks run on the
// connection's loop thread.
type engineHandler Server

func (h *engineHandler) OnOpen(rc *reactor.Conn) {
	s := (*Server)(h)
	c := &Conn{rc: rc, ls: &s.loops[rc.Loop().Index()]}
	rc.SetContext(c)
	c.over = s.conns.Add(1) > s.maxConns
	if s.perIP.max > 0 {
		c.ip = s.perIP.add(rc.RemoteAddr())
	}
	rc.SetDeadline(rc.Loop().Now().Add(s.limits.Load().HandshakeTimeout))
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
	c.lastRead, c.pinged = rc.Loop().NowNano(), false
	switch c.state {
	case stateOpen:
		return c.readFrames(data)
	case stateHandshake:
		return c.handshake(data)
	}
	return len(data) // closing: the client's bytes after a close are ignored
}

// directMin is the smallest rest of a frame's payload worth reading
// straight into the reassembly buffer rather than through the read buffer.
const directMin = 64 << 10

// ReadTarget lets a large frame's payload bypass the read buffer: once a
// frame's header is parsed and much of its payload is still to come, the
// loop reads it straight into the reassembly buffer (no copy).
func (h *engineHandler) ReadTarget(rc *reactor.Conn) []byte {
	c := rc.Context().(*Conn)
	in := &c.in
	if c.state != stateOpen || in.remain < directMin {
		return nil
	}
	if !in.buf.Grow(rc.Loop(), int(min(in.remain, 1<<20))) {
		return nil // no memory: the usual path refuses the message
	}
	b := in.buf.Bytes()
	return b[len(b):min(cap(b), len(b)+int(in.remain))]
}

// OnDirect takes n payload bytes read into the target: they are unmasked
// and validated where they lie.
func (h *engineHandler) OnDirect(rc *reactor.Conn, n int) {
	c := rc.Context().(*Conn)
	c.lastRead, c.pinged = rc.Loop().NowNano(), false
	in := &c.in
	in.buf.SetLen(in.buf.Len() + n)
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
	s := c.ls.s
	c.in.buf.Free(rc.Loop())
	c.closeDeflate()
	s.conns.Add(-1)
	if c.ip != nil {
		s.perIP.remove(c.ip)
	}
	if c.opened {
		atomic.AddInt64(&c.ls.c.Connections, -1)
		code := c.closeCode
		if code == 0 {
			code = StatusAbnormalClosure
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
