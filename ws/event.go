package ws

import (
	"slices"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/reactor"
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// OpenEvent: the WebSocket handshake completed.
	OpenEvent EventKind = iota + 1
	// MessageEvent: a whole text or binary message arrived.
	MessageEvent
	// CloseEvent: the connection is gone; Code says how it closed.
	CloseEvent
)

func (k EventKind) String() string {
	switch k {
	case OpenEvent:
		return "open"
	case MessageEvent:
		return "message"
	case CloseEvent:
		return "close"
	}
	return "unknown"
}

// Event is what a Handler receives. The Event and Data are owned by the
// server and valid only until Handle returns: Data is a view of the loop's
// read buffer (or of the connection's reassembly buffer for a fragmented
// message, or of its inflate buffer for a compressed one), unmasked in
// place. To keep the bytes, copy them or Retain them.
type Event struct {
	Kind EventKind
	Conn *Conn
	Op   OpCode     // MessageEvent: OpText or OpBinary
	Data []byte     // MessageEvent: the payload
	Code StatusCode // CloseEvent: the close code sent or received, 1006 if none
	Err  error      // CloseEvent: nil after a close frame (sent or received) and the peer's FIN; else why the transport closed
	// Compressed (MessageEvent): the message arrived compressed
	// (permessage-deflate); Data is its inflated payload.
	Compressed bool

	src   uint8  // where Data lives: srcRead, srcMsg or srcInflated (see Retain)
	frame []byte // the whole client frame, when its payload is in the read buffer behind its header (see Conn.writeFrame)
	raw   []byte // a compressed message's deflate data, as it arrived (unmasked)
	final bool   // that data ended with a final deflate block
}

// Where a MessageEvent's Data lives.
const (
	srcNone     uint8 = iota
	srcRead           // the loop's read buffer
	srcMsg            // the connection's reassembly buffer
	srcInflated       // the connection's inflate buffer
)

// Retain keeps the message's payload past Handle's return: the returned
// Buffer's Bytes are Data, valid until Buffer.Release, which any goroutine
// may call (exactly once). The payload is not copied when it sits in the
// loop's read buffer or in a reassembled message (the usual cases): the
// buffer gets another reference and the loop moves on to a fresh one. Only
// a payload that spanned a read boundary in a small frame is copied. Call it
// at most once per MessageEvent, on the loop thread, inside Handle.
//
// The loop's own reference lasts until the replies of this turn are sent, so
// releasing the Buffer early (even from another goroutine) never corrupts a
// reply that points into the same bytes.
func (e *Event) Retain() Buffer {
	c := e.Conn
	switch e.src {
	case srcRead:
		if h, off, ok := c.rc.Loop().RetainRead(e.Data); ok {
			return Buffer{h: h, b: h.Bytes()[off : off+len(e.Data)]}
		}
	case srcMsg:
		// The loop keeps its own reference until the replies that may point
		// into the message are flushed; then it drops it (Conn.endFrame).
		h, r := c.in.buf.Share()
		return Buffer{h: h, r: r, b: e.Data}
	case srcInflated:
		h, r := c.z.out.Share()
		return Buffer{h: h, r: r, b: e.Data}
	}
	count(&c.ls.c.RetainCopied, uint64(len(e.Data)))
	var b reactor.Buf
	if !b.Append(c.rc, e.Data, 0) { // copy: the payload is not in a buffer we can share
		return Buffer{b: slices.Clone(e.Data)} // copy: out of buffer memory; the handler asked, so the GC's
	}
	h, r, p := b.Detach(c.rc)
	return Buffer{h: h, r: r, b: p}
}

// Buffer is a message payload kept past the handler (Event.Retain). It is
// a small value; copy it freely, but Release it exactly once. Pool memory
// goes back to the pool on Release, a large message's region to the system
// when its last holder lets go; a heap copy is left to the GC.
type Buffer struct {
	h hugepage.Buffer
	r *hugepage.Region
	b []byte
}

// Bytes returns the payload, valid until Release.
func (b Buffer) Bytes() []byte { return b.b }

// Release gives the memory back. A second Release of pool memory panics.
func (b Buffer) Release() {
	switch {
	case !b.h.IsZero():
		b.h.Release()
	case b.r != nil && b.r.Release():
		b.r.Free()
	}
}

// Handler handles events. Handle runs on the connection's loop thread
// (run-to-completion): it must not block, and everything it does delays the
// other connections of that loop. A non-nil error on a MessageEvent closes
// the connection with 1011.
type Handler interface {
	Handle(e *Event) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(e *Event) error

// Handle calls f(e).
func (f HandlerFunc) Handle(e *Event) error { return f(e) }
