package ws

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/hioload-ws/hioload-ws/reactor"
)

// Errors returned by Conn methods.
var (
	// ErrConnClosed is returned when writing to a connection that is closing
	// or closed.
	ErrConnClosed = errors.New("ws: connection closed")
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
type Conn struct {
	rc *reactor.Conn
	ls *loopState // the owning loop's state; ls.s is the server

	// Eight one-byte fields, then the close code and the mask: the struct
	// is small because a server holds one per open connection.
	state  uint8
	opened bool      // the handshake completed and OpenEvent was delivered
	inMsg  bool      // a fragmented message is being reassembled in msg
	fin    bool      // the frame being streamed is the message's last
	utf8   UTF8State // validation state of the text message being reassembled
	msgOp  OpCode    // opcode of the message being reassembled
	over   bool      // opened past MaxConns: close with 1013 after the handshake
	pinged bool      // a keepalive ping is out and nothing was read since

	closeCode StatusCode // close code sent or received
	mask      [4]byte    // the streamed frame's mask key
	maskOff   uint8      // its offset into the key (mod 4)

	remain   int64       // payload bytes of the streamed frame still to come
	msg      reactor.Buf // reassembly buffer (copy, counted), pool memory
	lastRead int64       // loop time of the last read, for IdleTimeout
	ip       *ipKey      // counted in the per-address limit
	user     any
}

// UserData returns the value stored with SetUserData.
func (c *Conn) UserData() any { return c.user }

// SetUserData keeps an application value with the connection.
func (c *Conn) SetUserData(v any) { c.user = v }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.rc.RemoteAddr() }

// Loop is the index of the event loop that owns the connection.
func (c *Conn) Loop() int { return c.rc.Loop().Index() }

// WriteMessage sends p as one frame of type op (OpText, OpBinary, OpPing,
// OpPong). It must be called on the connection's loop thread. p is not
// copied: it is written with the other replies of this loop turn in one
// writev, so it must stay unchanged until the handler returns (an Event's
// Data qualifies). If the client has stopped reading and the bytes queued
// for it would pass Config.MaxWriteQueue, the connection is closed with 1008
// and ErrSlowConsumer is returned.
func (c *Conn) WriteMessage(op OpCode, p []byte) error {
	if c.state != stateOpen {
		return ErrConnClosed
	}
	if err := c.reply(op, p); err != nil {
		return err
	}
	c.ls.msgsOut.Add(1)
	c.ls.bytesOut.Add(uint64(len(p)))
	return nil
}

// reply queues a frame unless the client is a slow consumer: bytes the
// kernel already refused (the write queue) plus this frame would pass
// MaxWriteQueue. This turn's replies that writev has not offered yet do not
// count, so a client that reads keeps up however many messages it pipelines.
func (c *Conn) reply(op OpCode, p []byte) error {
	if c.rc.Queued()+len(p) > c.ls.s.limits.Load().MaxWriteQueue {
		c.fail(ErrSlowConsumer)
		return ErrSlowConsumer
	}
	c.writeFrame(op, p)
	return nil
}

// Send copies p and sends it as one frame of type op from any goroutine,
// through the owning loop's inbox. It returns reactor.ErrInboxFull when the
// loop is saturated (the caller decides whether to retry or drop).
func (c *Conn) Send(op OpCode, p []byte) error {
	data := slices.Clone(p) // copy: the caller's bytes may change once Send returns
	return c.rc.Loop().Post(reactor.Task{Conn: c.rc, Gen: c.rc.Gen(), Op: byte(op), Data: data})
}

// ErrInvalidCloseCode is returned by Close and CloseAsync for a code that
// RFC 6455 §7.4 does not allow in a close frame (1004, 1006, 1015, below
// 1000, 1016-2999, 5000 and above).
var ErrInvalidCloseCode = errors.New("ws: close code not allowed on the wire")

// Close starts the closing handshake with code and reason (cut to fit a
// control frame). StatusNoStatusRcvd (1005) sends a close frame without a
// status; a code that may not appear on the wire is refused with
// ErrInvalidCloseCode. It must be called on the connection's loop thread.
func (c *Conn) Close(code StatusCode, reason string) error {
	if code != StatusNoStatusRcvd && !ValidCloseCode(code) {
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
	if code != StatusNoStatusRcvd && !ValidCloseCode(code) {
		return ErrInvalidCloseCode
	}
	return c.rc.Loop().Post(reactor.Task{Conn: c.rc, Gen: c.rc.Gen(), Op: byte(OpClose), Code: uint16(code)})
}

func (c *Conn) writeFrame(op OpCode, p []byte) {
	if f := c.ls.frame; len(p) > 0 && len(f) == c.ls.frameHdr+len(p) && &f[c.ls.frameHdr] == &p[0] {
		// p is the payload of the frame being handled, still in the read
		// buffer behind its client header, which is dead once parsed and
		// 4 bytes (the mask key) longer than ours: write our header in
		// place and send header and payload as one contiguous iovec. No
		// payload byte moves.
		// Only once: a second reply of the same payload (a broadcast) must
		// not rewrite bytes the first one's iovec points at.
		var hdr [MaxHeaderSize]byte
		n := PutHeader(hdr[:], true, op, len(p))
		start := c.ls.frameHdr - n
		copy(f[start:], hdr[:n])
		c.ls.frame = nil
		c.rc.Write(f[start:])
		return
	}
	hdr := c.rc.Scratch(MaxHeaderSize)
	n := PutHeader(hdr, true, op, len(p))
	c.rc.Write(hdr[:n])
	c.rc.Write(p)
}

// fail sends a close frame for err and closes the connection gracefully:
// RFC 6455 §7.1.7, "Fail the WebSocket Connection".
func (c *Conn) fail(err *CloseError) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosed
	c.closeCode = err.Code
	c.ls.closesSent.Add(1)
	c.ls.closeCodes[closeCodeSlot(err.Code)].Add(1)
	b := c.rc.Scratch(MaxHeaderSize + 125)
	n := 0 // 1005 means "no status": an empty close payload
	if err.Code != StatusNoStatusRcvd {
		n = PutClose(b[4:], err.Code, err.Reason)
	}
	h := PutHeader(b, true, OpClose, n)
	if h != 2 {
		panic("ws: close header size") // n <= 125 always takes the 2-byte header
	}
	copy(b[2:], b[4:4+n])
	c.rc.Write(b[:2+n])
	c.rc.CloseGracefully()
}

// readFrames parses, unmasks and handles the frames in b and returns how
// many bytes it consumed; an incomplete header or control frame at the end
// is left for the next read. Whole unfragmented messages are handed to the
// handler in place (zero-copy); fragments and frames split across reads are
// reassembled in c.msg (the slow path, counted).
func (c *Conn) readFrames(b []byte) int {
	off := 0
	lim := c.ls.s.limits.Load()
	for off < len(b) && c.state == stateOpen {
		if c.remain > 0 {
			off += c.stream(b[off:])
			continue
		}
		h, hs, complete, err := ParseHeader(b[off:])
		if err != nil {
			c.fail(err.(*CloseError))
			return len(b)
		}
		if !complete {
			return off
		}
		if h.OpCode.IsControl() {
			end := off + hs + int(h.Length)
			if end > len(b) {
				return off // wait for the whole control frame (at most 139 bytes)
			}
			p := b[off+hs : end]
			Unmask(p, h.Mask, 0)
			off = end
			c.control(h.OpCode, p)
			continue
		}
		switch {
		case h.OpCode == OpContinuation && !c.inMsg:
			c.fail(ErrUnexpectedCont)
			return len(b)
		case h.OpCode != OpContinuation && c.inMsg:
			c.fail(ErrExpectedCont)
			return len(b)
		case h.Length > lim.MaxFrameSize:
			c.fail(ErrFrameTooBig)
			return len(b)
		case int64(c.msg.Len())+h.Length > lim.MaxMessageSize:
			c.fail(ErrMessageTooBig)
			return len(b)
		}
		off += hs
		if !c.inMsg && h.Fin && int64(len(b)-off) >= h.Length {
			// The fast path: a whole message in the read buffer.
			p := b[off : off+int(h.Length)]
			off += len(p)
			Unmask(p, h.Mask, 0)
			if h.OpCode == OpText && !ValidUTF8(p) {
				c.fail(ErrInvalidUTF8)
				return len(b)
			}
			c.ls.frame, c.ls.frameHdr = b[off-hs-len(p):off], hs
			c.deliverFrom(h.OpCode, p, srcRead)
			c.ls.frame = nil
			continue
		}
		if !c.inMsg {
			c.inMsg, c.msgOp, c.utf8 = true, h.OpCode, utf8Accept
		}
		c.remain, c.mask, c.maskOff, c.fin = h.Length, h.Mask, 0, h.Fin
		// Reserve room for the frame, but not more than 1 MiB ahead of the
		// bytes that actually arrive: a header alone must not pin 16 MiB.
		if !c.msg.Grow(c.rc.Loop(), int(min(h.Length, 1<<20))) {
			c.fail(errNoMemory)
			return len(b)
		}
		if h.Length == 0 {
			c.endFrame()
		}
	}
	if c.state != stateOpen {
		return len(b)
	}
	return off
}

// stream takes the next part of a data frame's payload into the
// reassembly buffer, validating text as it arrives (fail fast).
func (c *Conn) stream(b []byte) int {
	n := int(min(int64(len(b)), c.remain))
	if !c.msg.Append(c.rc.Loop(), b[:n]) { // copy: reassembly of a fragmented or split message
		c.fail(errNoMemory)
		return len(b)
	}
	c.ls.copied.Add(uint64(n))
	if !c.payload(c.msg.Bytes()[c.msg.Len()-n:]) {
		return len(b)
	}
	return n
}

// payload unmasks and validates the next bytes of the streamed frame, now
// at the end of the reassembly buffer, and completes the frame when they
// are its last. It reports false when it failed the connection.
func (c *Conn) payload(p []byte) bool {
	Unmask(p, c.mask, int(c.maskOff))
	c.maskOff = uint8((int(c.maskOff) + len(p)) & 3)
	if c.msgOp == OpText {
		s, ok := ValidateUTF8(c.utf8, p)
		if !ok {
			c.fail(ErrInvalidUTF8)
			return false
		}
		c.utf8 = s
	}
	c.remain -= int64(len(p))
	if c.remain == 0 {
		c.endFrame()
	}
	return true
}

// endFrame completes a streamed frame, and the message if it was final.
func (c *Conn) endFrame() {
	if !c.fin {
		return
	}
	if c.msgOp == OpText && !c.utf8.Complete() {
		c.fail(ErrInvalidUTF8)
		return
	}
	c.inMsg = false
	c.deliverFrom(c.msgOp, c.msg.Bytes(), srcMsg)
	// Replies may point into msg: it is given back after they are sent,
	// with the rest of this turn's replies.
	c.rc.FreeAfterFlush(&c.msg)
}

// control answers a ping, notes a pong, and completes the closing
// handshake (RFC 6455 §5.5).
func (c *Conn) control(op OpCode, p []byte) {
	switch op {
	case OpPing:
		c.reply(OpPong, p) // pongs count against MaxWriteQueue like echoes
	case OpPong:
		// Unsolicited pongs are allowed (§5.5.3) and need no answer.
	case OpClose:
		code, _, err := ParseClose(p)
		if err != nil {
			c.fail(err.(*CloseError))
			return
		}
		c.state = stateClosed
		c.closeCode = code
		// Echo the status code (§5.5.1), without the reason.
		if code == StatusNoStatusRcvd {
			c.writeFrame(OpClose, nil)
		} else {
			c.writeFrame(OpClose, p[:2])
		}
		c.rc.CloseGracefully()
	}
}

// deliverFrom hands a whole message to the handler; src says where its
// bytes live, for Event.Retain.
func (c *Conn) deliverFrom(op OpCode, p []byte, src uint8) {
	ls := c.ls
	ls.msgsIn.Add(1)
	ls.bytesIn.Add(uint64(len(p)))
	ev := &ls.ev
	*ev = Event{Kind: MessageEvent, Conn: c, Op: op, Data: p, src: src}
	err := c.ls.s.handler.Handle(ev)
	*ev = Event{}
	if err != nil {
		if log := c.ls.s.log; log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("ws: handler error", "remote", c.rc.RemoteAddr(), "err", err) // getpeername only when logged
		}
		c.fail(ErrHandler)
	}
}

// handshake runs the upgrade once the whole request is in data.
func (c *Conn) handshake(data []byte) int {
	n, resp, ok := c.ls.s.upgrade(data)
	if n == 0 {
		return 0
	}
	if ok && c.ip != nil && c.ip.over {
		resp, ok = httpError(http.StatusTooManyRequests, "too many connections from this address"), false
	}
	c.rc.Write(resp)
	if !ok {
		c.ls.rejected.Add(1)
		c.state = stateClosed
		c.rc.CloseGracefully()
		return len(data)
	}
	c.state = stateOpen
	if c.over {
		c.ls.overCap.Add(1)
		c.fail(errOverCapacity)
		return len(data)
	}
	c.opened = true
	c.rc.SetDeadline(time.Time{})
	if idle := c.ls.s.limits.Load().IdleTimeout; idle > 0 {
		c.rc.SetDeadline(c.rc.Loop().Now().Add(idle / 2))
	}
	c.ls.upgraded.Add(1)
	c.ls.open.Add(1)
	ev := &c.ls.ev
	*ev = Event{Kind: OpenEvent, Conn: c}
	c.ls.s.handler.Handle(ev)
	*ev = Event{}
	if c.state != stateOpen {
		return len(data)
	}
	return n + c.readFrames(data[n:])
}

var errOverCapacity = &CloseError{StatusTryAgainLater, "server at its connection limit"}
var errIdle = &CloseError{StatusGoingAway, "idle timeout"}

// errNoMemory refuses a message the server has no buffer memory for: the
// pool is exhausted and the heap budget (Config.MaxHeapBytes) spent.
var errNoMemory = &CloseError{StatusTryAgainLater, "server out of buffer memory"}

// keepalive runs at a connection's idle deadline: after IdleTimeout/2 of
// silence it sends a ping (RFC 6455 §5.5.2, a live client answers with a
// pong, which counts as activity); after IdleTimeout of silence it closes
// with 1001.
func (c *Conn) keepalive() {
	idle := c.ls.s.limits.Load().IdleTimeout
	if idle <= 0 {
		return // turned off by a reload
	}
	now := c.rc.Loop().NowNano()
	silent := time.Duration(now - c.lastRead)
	switch {
	case silent >= idle:
		c.ls.timeouts.Add(1)
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
