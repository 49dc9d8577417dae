package ws

import (
	"net"
	"slices"

	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// Connection states.
const (
	stateHandshake uint8 = iota
	stateOpen
	stateClosed // close frame sent or received; reads are discarded
)

// Conn is one WebSocket connection. WriteMessage, Close and the getters must
// be called on the connection's loop thread, i.e. from the Handler; Send and
// CloseAsync may be called from any goroutine.
//
// An idle connection costs 64 bytes here (on 64-bit systems): the state of
// a message that spans frames or reads (msgReader) is taken only while one
// does.
type Conn struct {
	rc *reactor.Conn
	ls *loopState // the owning loop's state; ls.s is the server

	state     uint8
	opened    bool // the handshake completed and OpenEvent was delivered
	pinged    bool // a keepalive ping is out and nothing was read since
	closeCode StatusCode
	hs        wire.HeadScanner // how far the upgrade request was scanned (2 bytes, in padding)
	in        *msgReader       // the message being read across frames or reads; nil when none
	z         *connDeflate     // permessage-deflate state; nil when not negotiated
	lastRead  int64            // loop time of the last read once open (IdleTimeout); of the connect before (HandshakeTimeout)
	user      any
}

// UserData returns the value stored with SetUserData.
func (c *Conn) UserData() any { return c.user }

// SetUserData keeps an application value with the connection.
func (c *Conn) SetUserData(v any) { c.user = v }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.rc.RemoteAddr() }

// Loop is the index of the event loop that owns the connection (as in
// LoopStats.Loop).
func (c *Conn) Loop() int { return c.rc.Loop().Index() }

// WriteMessage sends p as one frame of type op (OpText, OpBinary, OpPing,
// OpPong). It must be called on the connection's loop thread. p is not
// copied: it is written with the other replies of this loop turn in one
// gather write, so it must stay unchanged until the handler returns (an
// Event's Data qualifies). With permessage-deflate negotiated, a text or
// binary message is compressed into a pool buffer instead (see
// Compression.MinSize), without allocating. If the client has stopped reading and the bytes
// queued for it would pass Config.MaxWriteQueue, the connection is closed
// with 1008 and ErrSlowConsumer is returned.
func (c *Conn) WriteMessage(op OpCode, p []byte) error {
	if c.state != stateOpen {
		return ErrConnClosed
	}
	var err error
	if c.z != nil && (op == OpText || op == OpBinary) {
		err = c.writeCompressed(op, p)
	} else {
		err = c.reply(op, p)
	}
	if err != nil {
		return err
	}
	count(&c.ls.c.MessagesOut, 1)
	count(&c.ls.c.BytesOut, uint64(len(p)))
	return nil
}

// Tasks a Conn posts to its loop: the op (or the close code, for OpClose)
// travels in reactor.Task.Tag.
const tagCodeShift = 8

// Send copies p and sends it as one frame of type op from any goroutine,
// through the owning loop's inbox; it does not block. It returns ErrBusy
// when the loop's inbox is full (the caller decides whether to retry or
// drop), and ErrConnClosed once the server's shutdown has reached the
// connection's loop.
//
// A message Send accepted (returned nil for) is written in order with the
// connection's other messages, and before the close 1001 of a shutdown:
// Shutdown loses none of them. It is not written only when the connection
// closes first for another reason (the client closed, a protocol error, a
// slow consumer's 1008); Stats.SendsDropped and LoopStats.TasksDropped
// count those.
func (c *Conn) Send(op OpCode, p []byte) error {
	data := slices.Clone(p) // copy: the caller's bytes may change once Send returns
	c.ls.sendCopied.Add(uint64(len(p)))
	return c.post(reactor.Task{Tag: uint32(op), Data: data})
}

// Close starts the closing handshake with code and reason (cut to fit a
// control frame). StatusNoStatusRcvd (1005) sends a close frame without a
// status; a code that may not appear on the wire is refused with
// ErrInvalidCloseCode. It must be called on the connection's loop thread.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !validCloseCode(code) {
		return ErrInvalidCloseCode
	}
	if c.state != stateOpen {
		return ErrConnClosed
	}
	c.fail(&CloseError{Code: code, Reason: reason})
	return nil
}

// CloseAsync is Close from any goroutine (without a reason).
func (c *Conn) CloseAsync(code StatusCode) error {
	if !validCloseCode(code) {
		return ErrInvalidCloseCode
	}
	return c.post(reactor.Task{Tag: uint32(OpClose) | uint32(code)<<tagCodeShift})
}

// post hands t to c's loop, which runs it (engineHandler.OnTask) if c is
// still open then.
func (c *Conn) post(t reactor.Task) error {
	t.Conn, t.Gen = c.rc, c.rc.Gen()
	switch err := c.rc.Loop().Post(t); err {
	case reactor.ErrInboxFull:
		return ErrBusy
	case reactor.ErrClosed:
		return ErrConnClosed
	default:
		return err
	}
}

// runTask runs a task Send or CloseAsync posted, on the loop thread. A
// CloseAsync for a connection already closing has nothing left to do; a
// Send's message that cannot be written any more is counted as dropped.
func (c *Conn) runTask(t *reactor.Task) {
	switch op := OpCode(t.Tag & (1<<tagCodeShift - 1)); op {
	case OpClose:
		c.Close(StatusCode(t.Tag>>tagCodeShift), "")
	default:
		if c.WriteMessage(op, t.Data) != nil {
			count(&c.ls.c.SendsDropped, 1)
		}
	}
}

// validCloseCode reports whether code may be sent in a close frame; 1005
// means a close frame without a status.
func validCloseCode(code StatusCode) bool {
	return code == StatusNoStatusRcvd || wire.ValidCloseCode(code)
}
