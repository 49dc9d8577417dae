package ws

import (
	"errors"

	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/ws/internal/deflate"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// permessage-deflate (RFC 7692) on a connection. A compressed message is
// read like any other (in place when it is all in the read buffer,
// reassembled otherwise), then inflated as a whole into a pool buffer by
// the loop's Inflater, bounded by MaxMessageSize while it inflates. A reply
// is compressed by the loop's Compressors into a pool buffer, except the
// echo of a compressed message that is already a valid reply: that one
// leaves from the bytes it arrived in (Params.Passthrough). The connection
// itself keeps only its Params, its Compressors stream handle and, under
// client context takeover, the client's history window.

// connDeflate is a connection's permessage-deflate state, made at the
// upgrade when the extension was negotiated; nil otherwise.
type connDeflate struct {
	p          deflate.Params
	compressed bool // the message being reassembled has RSV1 on its first frame
	stream     deflate.Stream
	out        reactor.Buf // the message being delivered, inflated; pool memory, empty between messages
	window     reactor.Buf // the client's history (client context takeover only), pool memory
}

// loopDeflate is a loop's permessage-deflate machinery, made when the loop
// first needs it.
type loopDeflate struct {
	inf  *deflate.Inflater
	comp *deflate.Compressors
	out  bufWriter // the reply being compressed
}

// bufWriter is an io.Writer appending to a connection's buffer.
type bufWriter struct {
	c *reactor.Conn
	b reactor.Buf
}

var errBufFull = errors.New("ws: no buffer memory")

func (w *bufWriter) Write(p []byte) (int, error) {
	if !w.b.Append(w.c, p, 0) {
		return 0, errBufFull
	}
	return len(p), nil
}

// deflate returns the loop's permessage-deflate machinery; loop thread only.
func (ls *loopState) deflate() *loopDeflate {
	if ls.z == nil {
		z := &ls.s.cfg.Compression
		ls.z = &loopDeflate{inf: deflate.NewInflater(), comp: deflate.NewCompressors(z.Level, z.HistorySlots)}
	}
	return ls.z
}

// rsv is the reserved bits the client may set: RSV1 once permessage-deflate
// is negotiated.
func (c *Conn) rsv() byte {
	if c.z == nil {
		return 0
	}
	return wire.RSV1
}

// compressedLimit is a limit on a message's size applied to its deflate
// data. Deflate stores incompressible data in blocks with 5 bytes of header
// each, and the blocks can be small: zlib makes them 2 KiB at memLevel 5
// (Python's websockets: +0.24%), 128 bytes at memLevel 1 (+3.9%). So a
// message of exactly the limit may take up to 1/16 more once compressed.
func compressedLimit(n int64) int64 { return n + n>>4 + 64 }

// beginMessage notes whether a message that starts to be reassembled is
// compressed (the state lives with the extension's, to keep Conn small).
func (c *Conn) beginMessage(rsv byte) {
	if c.z != nil {
		c.z.compressed = rsv&wire.RSV1 != 0
	}
}

// compressedMsg reports whether the message being reassembled is
// compressed.
func (c *Conn) compressedMsg() bool { return c.z != nil && c.z.compressed }

// inflate inflates a compressed message whose deflate data is p, checks
// it, and delivers it. frame is p with free room for a header in front of
// it (the client's header in the read buffer, or the reassembly buffer's
// msgHead), for a reply sent as it arrived; owned says p ends the
// reassembly buffer, whose spare capacity the inflater may use when it can
// be had without moving p (a region's is made writable first).
func (c *Conn) inflate(op OpCode, p, frame []byte, owned bool) {
	ls, z := c.ls, c.z
	ld := ls.deflate()
	if owned { // p ends c.in's reassembly buffer
		in := &c.in.buf
		owned = in.Cap()-in.Len() >= deflate.TailLen && in.Grow(c.rc, deflate.TailLen, 0)
	}
	keep := !z.p.ClientNoContextTakeover
	var window []byte
	if keep {
		window = z.window.Bytes()
	}
	count(&ls.c.DeflateCopied, uint64(ld.inf.Begin(p, window, owned)))
	out := &z.out
	err := c.inflateInto(out, ld.inf, len(p))
	final := ld.inf.Final
	ld.inf.Release()
	if err == nil && op == OpText && !wire.ValidUTF8(out.Bytes()) {
		err = wire.ErrInvalidUTF8
	}
	if err == nil && keep {
		err = c.slideWindow(out.Bytes())
	}
	if err != nil {
		out.Free(c.rc)
		c.fail(err)
		return
	}
	count(&ls.c.DeflateIn, 1)
	count(&ls.c.DeflateWireIn, uint64(len(p)))
	c.deliver(Event{Op: op, Data: out.Bytes(), Compressed: true, src: srcInflated, frame: frame, raw: p, final: final})
	// Replies may point into out: it is given back after they are sent.
	c.rc.FreeAfterFlush(out)
}

// inflateInto reads the message the Inflater began into out, never letting
// it pass MaxMessageSize: a message that inflates to more is refused with
// 1009 before a byte more is stored (a high ratio alone is fine). out grows
// as output comes, paid for like any buffer (Config.MaxHeapBytes: a
// refusal is 1013): first by a guess from the compressed size (hint), then
// doubling, and once large into a region reserved up to the limit that
// costs only what is written.
func (c *Conn) inflateInto(out *reactor.Buf, inf *deflate.Inflater, hint int) *CloseError {
	lim := int(min(c.ls.s.limits.Load().MaxMessageSize, maxInt))
	first := max(8*hint, 1024)
	for {
		if out.Len() == lim {
			var probe [1]byte
			n, done, err := inf.Read(probe[:])
			switch {
			case err != nil:
				return wire.ErrInflate
			case n > 0:
				return wire.ErrMessageTooBig
			case done:
				return nil
			}
			continue
		}
		k := min(lim-out.Len(), max(out.Len(), first))
		if !out.Grow(c.rc, k, lim) {
			return errNoMemory
		}
		n, done, err := inf.Read(out.Spare(k))
		out.Extend(c.rc, n)
		switch {
		case err != nil:
			return wire.ErrInflate
		case done:
			return nil
		}
	}
}

// maxInt bounds MaxMessageSize where it becomes a length.
const maxInt = int64(^uint(0) >> 1)

// slideWindow appends an inflated message to the client's history window
// (client context takeover): the next message may refer to its last
// 2^ClientWindowBits bytes.
func (c *Conn) slideWindow(msg []byte) *CloseError {
	w := &c.z.window
	size := deflate.WindowSize(c.z.p.ClientWindowBits)
	if w.Cap() < size && !w.Grow(c.rc, size-w.Len(), size) {
		return errNoMemory
	}
	nw, copied := deflate.Slide(w.Bytes(), msg, size)
	if len(nw) > w.Len() {
		w.Extend(c.rc, len(nw)-w.Len())
	} else {
		w.Truncate(len(nw))
	}
	count(&c.ls.c.DeflateCopied, uint64(copied))
	return nil
}

// writeCompressed sends a text or binary message on a connection with
// permessage-deflate. The echo of a message that arrived compressed is
// always compressed: sent as it arrived when that is a valid reply
// (Params.Passthrough, and no final block under server context takeover,
// which would end the client's inflater), compressed again otherwise. Other
// replies are compressed from Compression.MinSize bytes on, and sent
// uncompressed when compressing does not make them smaller.
func (c *Conn) writeCompressed(op OpCode, p []byte) error {
	z, ld := c.z, c.ls.deflate()
	ev := &c.ls.ev
	echo := ev.Conn == c && ev.Compressed && sameBytes(p, ev.Data)
	switch {
	case echo && z.p.Passthrough() && (z.p.ServerNoContextTakeover || !ev.final):
		// The client's history now holds p; the compressor's does not.
		ld.comp.Drop(&z.stream)
		count(&c.ls.c.DeflatePassthrough, 1)
		return c.replyCompressed(op, ev.raw)
	case !echo && len(p) < c.ls.s.cfg.Compression.MinSize:
		return c.reply(op, p)
	}
	w := &ld.out
	w.c = c.rc
	if !w.b.Grow(w.c, len(p)+len(p)>>6+64, 0) { // room for incompressible data too
		c.fail(errNoMemory)
		return errNoMemory
	}
	if err := ld.comp.Compress(&z.stream, p, z.p.ServerWindowBits, !z.p.ServerNoContextTakeover, w); err != nil {
		w.b.Free(w.c)
		c.fail(errNoMemory)
		return errNoMemory
	}
	b, _ := deflate.TrimTail(w.b.Bytes())
	if !echo && len(b) >= len(p) {
		ld.comp.Drop(&z.stream) // p goes uncompressed: the client's history will not hold it
		w.b.Free(w.c)
		return c.reply(op, p)
	}
	err := c.replyCompressed(op, b)
	// The reply points into the buffer: it is given back once sent.
	c.rc.FreeAfterFlush(&w.b)
	return err
}

// replyCompressed queues a compressed message: RSV1 set, b its deflate
// data.
func (c *Conn) replyCompressed(op OpCode, b []byte) error {
	if err := c.reply(op|wire.OpRSV1, b); err != nil {
		return err
	}
	count(&c.ls.c.DeflateOut, 1)
	count(&c.ls.c.DeflateWireOut, uint64(len(b)))
	return nil
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// closeDeflate gives back what a closing connection holds for
// permessage-deflate.
func (c *Conn) closeDeflate() {
	if c.z == nil {
		return
	}
	c.z.out.Free(c.rc)
	c.z.window.Free(c.rc)
	if c.ls.z != nil {
		c.ls.z.comp.Drop(&c.z.stream)
	}
}
