package ws

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
// message), unmasked in place. To keep the bytes, copy them.
type Event struct {
	Kind EventKind
	Conn *Conn
	Op   OpCode     // MessageEvent: OpText or OpBinary
	Data []byte     // MessageEvent: the payload
	Code StatusCode // CloseEvent: the close code sent or received, 1006 if none
	Err  error      // CloseEvent: why the transport closed, if not by handshake
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

// Middleware wraps a Handler. Middlewares compose in the order given: the
// first one registered sees an event first.
type Middleware func(next Handler) Handler

func chain(h Handler, mws []Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
