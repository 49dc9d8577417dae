package reactor

// sendQueue is the front of a connection's write queue: the bytes being
// sent, moved out of c.io.out, so that new output is appended to a fresh
// buffer and queued bytes are never moved to make room. An engine sending
// asynchronously (IOCP, io_uring) has handed them to the kernel, which
// reads them until the send completes; epoll writes them a slice at a time
// (writeSlice). The queue's memory and accounting move with it.
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
func (s *sendQueue) free(c *Conn) {
	s.q.Free(c)
	s.b = nil
}

// flightDone frees what c's asynchronous send held, and c's connIO if
// that was all it held.
func (c *Conn) flightDone() {
	c.io.flight.free(c)
	c.ioRelease()
}
