package reactor

// sendQueue is the part of a connection's write queue that an engine
// sending asynchronously (IOCP, io_uring) has handed to the kernel. The
// kernel reads those bytes until the send completes, so they must not move
// while c.out keeps taking (and may grow or compact) what the handler
// queues meanwhile: the queue moves out of c.out, its memory and
// accounting with it.
type sendQueue struct {
	q Buf    // the queue's memory
	b []byte // its bytes the kernel has not taken yet
}

// take moves c's write queue into s; s.b is what to send.
func (s *sendQueue) take(c *Conn) {
	io := c.io
	s.q, io.out = io.out, Buf{}
	s.b = s.q.Bytes()[io.outHead:]
	io.outHead = 0
}

// sent records that the kernel took n bytes and reports whether any are
// left to send.
func (s *sendQueue) sent(c *Conn, n int) bool {
	c.wrote(n)
	s.b = s.b[n:]
	return len(s.b) > 0
}

// free gives the queue's memory back.
func (s *sendQueue) free(l *Loop) {
	s.q.Free(l)
	s.b = nil
}

// flightDone frees what c's asynchronous send held, and c's connIO if
// that was all it held.
func (c *Conn) flightDone() {
	c.io.flight.free(c.loop)
	c.ioRelease()
}
