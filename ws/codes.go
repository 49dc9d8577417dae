package ws

import (
	"errors"
	"fmt"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/ws/internal/wire"
)

// OpCode and StatusCode are gobwas/ws's types, so that values pass between
// this package and gobwas-based code unchanged.
type (
	OpCode     = gws.OpCode
	StatusCode = gws.StatusCode
)

// Message and control frame types (RFC 6455 §5.2).
const (
	OpText   = gws.OpText
	OpBinary = gws.OpBinary
	OpClose  = gws.OpClose
	OpPing   = gws.OpPing
	OpPong   = gws.OpPong
)

// Close status codes (RFC 6455 §7.4.1 and the IANA registry).
const (
	StatusNormalClosure      StatusCode = 1000
	StatusGoingAway          StatusCode = 1001
	StatusProtocolError      StatusCode = 1002
	StatusUnsupportedData    StatusCode = 1003
	StatusNoStatusRcvd       StatusCode = 1005
	StatusAbnormalClosure    StatusCode = 1006
	StatusInvalidPayload     StatusCode = 1007
	StatusPolicyViolation    StatusCode = 1008
	StatusMessageTooBig      StatusCode = 1009
	StatusMandatoryExtension StatusCode = 1010
	StatusInternalError      StatusCode = 1011
	StatusServiceRestart     StatusCode = 1012
	StatusTryAgainLater      StatusCode = 1013
	StatusBadGateway         StatusCode = 1014
)

// CloseError is a failure and the close code that answers it (Code, with
// Reason as the close frame's text): errors.As finds the code of any error
// the server closes a connection for.
type CloseError = wire.CloseError

// Errors returned by Conn and Server methods.
var (
	// ErrConnClosed is returned when writing to a connection that is
	// closing or closed.
	ErrConnClosed = errors.New("ws: connection closed")
	// ErrInvalidCloseCode is returned by Close and CloseAsync for a code
	// that RFC 6455 §7.4 does not allow in a close frame (1004, 1006, 1015,
	// below 1000, 1016-2999, 5000 and above).
	ErrInvalidCloseCode = errors.New("ws: close code not allowed on the wire")
	// ErrBusy is returned by Send and CloseAsync when the connection's loop
	// has a full inbox: the caller decides whether to retry or drop.
	ErrBusy = errors.New("ws: event loop busy (inbox full)")
	// ErrSlowConsumer is returned by WriteMessage when the client stopped
	// reading and its queued replies would pass Config.MaxWriteQueue; the
	// connection is then closed with 1008.
	ErrSlowConsumer = &CloseError{Code: StatusPolicyViolation, Reason: "write queue limit exceeded: the client is not reading"}
	// ErrAddrInUse is wrapped by NewServer's error when another socket
	// already listens on Config.ListenAddr (another process's, even one
	// sharing it with SO_REUSEPORT) and Config.ReusePort is off. The
	// error names the address.
	ErrAddrInUse = reactor.ErrAddrInUse
	// ErrNoLogLevel is returned when a log level is to be set but the
	// server was made without WithLogLevel.
	ErrNoLogLevel = errors.New("ws: no log level to control (use WithLogLevel)")
	// ErrPoolsKept is wrapped in the error Shutdown and Run return when a
	// buffer pool could not be unmapped, most often because a handler
	// retained buffers (Event.Retain) and never released them: the memory
	// stays mapped until the process exits.
	ErrPoolsKept = errors.New("ws: buffer pools kept mapped")
)

// ShutdownError is returned by Shutdown and Run (possibly joined with an
// ErrPoolsKept error: use errors.As) when the shutdown's deadline passed
// before every client had answered its close: Forced connections were then
// closed without finishing the close handshake (TCP connections still in
// the upgrade count too). errors.Is(err, context.DeadlineExceeded) holds
// for Config.ShutdownTimeout.
type ShutdownError struct {
	Forced int   // connections closed by force
	Err    error // the context's error
}

func (e *ShutdownError) Error() string {
	return fmt.Sprintf("ws: shutdown: %v: %d client(s) closed without the close handshake", e.Err, e.Forced)
}

func (e *ShutdownError) Unwrap() error { return e.Err }

// The server's own reasons to close, besides the codec's (wire.Err*).
var (
	errHandler   = &CloseError{Code: StatusInternalError, Reason: "handler failed"}
	errIdle      = &CloseError{Code: StatusGoingAway, Reason: "idle timeout"}
	errGoingAway = &CloseError{Code: StatusGoingAway, Reason: "server shutting down"}
	// errNoMemory refuses a message the server has no buffer memory for:
	// the budget (Config.MaxHeapBytes) is spent and the connection holds
	// more than its share of it.
	errNoMemory = &CloseError{Code: StatusTryAgainLater, Reason: "server out of buffer memory"}
	// errEvicted closes a connection holding more than its share of buffer
	// memory when another needed some and the budget was spent.
	errEvicted = &CloseError{Code: StatusTryAgainLater, Reason: "buffer memory short: this connection held the most"}
	// errStalled closes a connection whose client took none of its queued
	// replies for Limits.WriteStallTimeout.
	errStalled = &CloseError{Code: StatusPolicyViolation, Reason: "write stalled: the client is not reading"}
)
