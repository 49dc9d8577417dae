package ws

import (
	"context"
	"log/slog"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// msgReader is the state of a message that spans frames or reads: the data
// frame whose payload is still arriving, and the message being reassembled
// from it (and its fragments). Whole messages that arrive in one read never
// touch it.
//
// The reassembly buffer grows only as payload arrives (never ahead of it by
// more than the read about to happen), so that a header announcing 16 MiB
// costs nothing until the bytes come. Once the message is large it moves,
// once, to a region reserved for everything the header announced (or the
// message limit, for a fragmented message), which holds memory only where
// payload was written. Its first msgHead bytes are room for the reply's
// header, so that an echo of the message leaves as one contiguous write
// (Conn.writeFrame) that can become the write queue without a copy.
type msgReader struct {
	op      OpCode         // the message's opcode; 0 (a continuation's) when none is being read
	fin     bool           // the frame being streamed is the message's last
	utf8    wire.UTF8State // validation state of a text message so far
	maskOff uint8          // offset into mask of the next payload byte (mod 4)
	mask    [4]byte        // the streamed frame's mask key
	remain  int64          // payload bytes of the streamed frame still to come
	buf     reactor.Buf    // msgHead bytes of header room, then the message (copy, counted)
}

// msgHead is the room kept in front of a reassembled message for the
// header of its echo.
const msgHead = wire.MaxHeaderSize

// size is the length of the message reassembled so far.
func (in *msgReader) size() int64 { return int64(max(in.buf.Len()-msgHead, 0)) }

// grow makes room for n more payload bytes of the streamed frame. The
// buffer may grow up to the frame's end, or the message limit while more
// fragments may follow.
func (c *Conn) grow(n int, lim *Limits) bool {
	in := c.in
	limit := in.size() + in.remain
	if !in.fin {
		limit = max(limit, lim.MaxMessageSize)
	}
	head := 0
	if in.buf.Len() == 0 {
		head = msgHead
	}
	if !in.buf.Grow(c.rc, head+n, msgHead+int(limit)) {
		return false
	}
	in.buf.Extend(c.rc, head)
	return true
}

// active reports whether a message is being reassembled.
func (in *msgReader) active() bool { return in.op != gws.OpContinuation }

// readerSpares bounds the msgReaders a loop keeps for reuse.
const readerSpares = 64

// reader returns c's msgReader, taking one when c has none.
func (c *Conn) reader() *msgReader {
	if c.in == nil {
		c.in = c.ls.readers.Get()
	}
	return c.in
}

// readerDone gives c's msgReader back once no message is being read (its
// buffer is freed or handed on already).
func (c *Conn) readerDone() {
	in := c.in
	if in == nil || in.active() || in.remain > 0 || in.buf.Cap() > 0 {
		return
	}
	c.in = nil
	c.ls.readers.Put(in)
}

// reading reports whether a message is being reassembled.
func (c *Conn) reading() bool { return c.in != nil && c.in.active() }

// streaming reports whether a data frame's payload is still to come.
func (c *Conn) streaming() bool { return c.in != nil && c.in.remain > 0 }

// reassembled is the size of the message reassembled so far.
func (c *Conn) reassembled() int64 {
	if c.in == nil {
		return 0
	}
	return c.in.size()
}

// readFrames parses, unmasks and handles the frames in b and returns how
// many bytes it consumed; an incomplete header or control frame at the end
// is left for the next read. Whole unfragmented messages are handed to the
// handler in place (zero-copy); fragments and frames split across reads are
// reassembled in c.in.buf (the slow path, counted).
func (c *Conn) readFrames(b []byte) int {
	off := 0
	lim := c.ls.s.limits.Load()
	for off < len(b) && c.state == stateOpen {
		if c.streaming() {
			off += c.stream(b[off:], lim)
			continue
		}
		n := c.readFrame(b[off:], lim)
		if n == 0 {
			break // an incomplete header or control frame: wait for more
		}
		off += n
	}
	if c.state != stateOpen {
		return len(b) // failed or closed: the rest is ignored
	}
	return off
}

// readFrame handles the frame at the start of b. It returns the bytes it
// consumed: 0 when the frame's header (or, for a control frame, the frame)
// is not all there yet; for a data frame whose payload is still to come, the
// header only (stream takes the payload).
func (c *Conn) readFrame(b []byte, lim *Limits) int {
	h, hs, complete, err := wire.ParseHeader(b, c.rsv())
	switch {
	case err != nil:
		c.fail(err.(*CloseError))
		return len(b)
	case !complete:
		return 0
	case h.OpCode.IsControl():
		end := hs + int(h.Length)
		if end > len(b) {
			return 0 // wait for the whole control frame (at most 139 bytes)
		}
		p := b[hs:end]
		wire.Unmask(p, h.Mask, 0)
		c.control(h.OpCode, p)
		return end
	}
	if err := c.checkData(&h, lim); err != nil {
		c.fail(err)
		return len(b)
	}
	if !c.reading() && h.Fin && int64(len(b)-hs) >= h.Length {
		return hs + c.deliverInPlace(b[:hs+int(h.Length)], hs, h)
	}
	c.beginFrame(&h)
	return hs
}

// checkData checks a data frame's header against the message in progress
// and the size limits (RFC 6455 §5.4, before any payload byte is read).
// The frames of a compressed message may exceed the limits by what deflate
// adds to incompressible data (compressedLimit); its inflated size is
// checked as it inflates.
func (c *Conn) checkData(h *wire.Header, lim *Limits) *CloseError {
	frameMax, msgMax := lim.MaxFrameSize, lim.MaxMessageSize
	if h.Rsv != 0 || h.OpCode == gws.OpContinuation && c.compressedMsg() {
		frameMax, msgMax = compressedLimit(frameMax), compressedLimit(msgMax)
	}
	switch {
	case h.OpCode == gws.OpContinuation && !c.reading():
		return wire.ErrUnexpectedCont
	case h.OpCode != gws.OpContinuation && c.reading():
		return wire.ErrExpectedCont
	case h.Length > frameMax:
		return wire.ErrFrameTooBig
	case c.reassembled()+h.Length > msgMax:
		return wire.ErrMessageTooBig
	}
	return nil
}

// deliverInPlace handles a whole unfragmented message that is all in the
// read buffer: frame is its header (hs bytes) and payload. The payload is
// unmasked and validated where it lies and handed to the handler there; the
// event carries the frame, so that an echo can reuse the dead header (see
// Conn.writeFrame). It returns the payload's length.
func (c *Conn) deliverInPlace(frame []byte, hs int, h wire.Header) int {
	p := frame[hs:]
	wire.Unmask(p, h.Mask, 0)
	switch {
	case h.Rsv != 0:
		c.inflate(h.OpCode, p, frame, false)
	case h.OpCode == OpText && !wire.ValidUTF8(p):
		c.fail(wire.ErrInvalidUTF8)
	default:
		c.deliver(Event{Op: h.OpCode, Data: p, src: srcRead, frame: frame})
	}
	return len(p)
}

// beginFrame starts streaming a data frame whose payload is not all in the
// read buffer. Nothing is allocated for it yet: memory comes with the
// payload (stream, Conn.ReadTarget).
func (c *Conn) beginFrame(h *wire.Header) {
	in := c.reader()
	if !in.active() {
		in.op, in.utf8 = h.OpCode, 0
		c.beginMessage(h.Rsv)
	}
	in.remain, in.mask, in.maskOff, in.fin = h.Length, h.Mask, 0, h.Fin
	if h.Length == 0 {
		if in.buf.Len() == 0 && !c.grow(0, c.ls.s.limits.Load()) {
			c.fail(errNoMemory)
			return
		}
		c.endFrame()
	}
}

// stream takes the next part of a data frame's payload into the
// reassembly buffer, validating text as it arrives (fail fast).
func (c *Conn) stream(b []byte, lim *Limits) int {
	in := c.in
	n := int(min(int64(len(b)), in.remain))
	if !c.grow(n, lim) {
		c.fail(errNoMemory)
		return len(b)
	}
	copy(in.buf.Spare(n), b[:n]) // copy: reassembly of a fragmented or split message
	in.buf.Extend(c.rc, n)
	count(&c.ls.c.Reassembled, uint64(n))
	if !c.payload(in.buf.Bytes()[in.buf.Len()-n:]) {
		return len(b)
	}
	return n
}

// payload unmasks and validates the next bytes of the streamed frame, now
// at the end of the reassembly buffer, and completes the frame when they
// are its last. It reports false when it failed the connection.
func (c *Conn) payload(p []byte) bool {
	in := c.in
	wire.Unmask(p, in.mask, int(in.maskOff))
	in.maskOff = uint8((int(in.maskOff) + len(p)) & 3)
	if in.op == OpText && !c.compressedMsg() { // compressed text is checked once inflated
		s, ok := wire.ValidateUTF8(in.utf8, p)
		if !ok {
			c.fail(wire.ErrInvalidUTF8)
			return false
		}
		in.utf8 = s
	}
	in.remain -= int64(len(p))
	if in.remain == 0 {
		c.endFrame()
	}
	return true
}

// endFrame completes a streamed frame, and the message if it was final.
func (c *Conn) endFrame() {
	in := c.in
	if !in.fin {
		return
	}
	compressed := c.compressedMsg()
	if in.op == OpText && !compressed && !in.utf8.Complete() {
		c.fail(wire.ErrInvalidUTF8)
		return
	}
	op := in.op
	in.op = gws.OpContinuation // the message is complete
	frame := in.buf.Bytes()
	if compressed {
		c.inflate(op, frame[msgHead:], frame, true)
	} else {
		c.deliver(Event{Op: op, Data: frame[msgHead:], src: srcMsg, frame: frame})
	}
	if c.in != in {
		return // the handler's reply closed c, and OnClose took the reader
	}
	// Replies may point into buf: it is given back after they are sent,
	// with the rest of this turn's replies (or becomes the write queue).
	c.rc.FreeAfterFlush(&in.buf)
	c.readerDone()
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
		code, _, err := wire.ParseClose(p)
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

// deliver hands a whole message to the handler: e's Op and Data, and where
// the bytes live (src, for Event.Retain; frame, the payload as it arrived
// with at least wire.MaxHeaderSize bytes in front of it that are free to
// overwrite: the client's header in the read buffer, or msgHead, for
// Conn.writeFrame).
func (c *Conn) deliver(e Event) {
	ls := c.ls
	count(&ls.c.MessagesIn, 1)
	count(&ls.c.BytesIn, uint64(len(e.Data)))
	e.Kind, e.Conn = MessageEvent, c
	if err := c.event(e); err != nil {
		if log := ls.s.log; log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("ws: handler error", "remote", c.rc.RemoteAddr(), "err", err) // getpeername only when logged
		}
		c.fail(errHandler)
	}
}
