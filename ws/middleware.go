package ws

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Middleware wraps a Handler. Middlewares compose in the order given: the
// first one registered sees an event first.
type Middleware func(next Handler) Handler

func chain(h Handler, mws []Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Recovery turns a panic in the handler into a close with 1011 for that
// connection; the loop and every other connection go on. The panic and its
// stack are logged at error level, about logBurst of them a second (a
// panic a client can trigger must not flood the log); the next logged one
// says how many were not.
func Recovery(log *slog.Logger) Middleware {
	var lim logLimiter
	return func(next Handler) Handler {
		return HandlerFunc(func(e *Event) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if skipped, ok := lim.allow(); ok {
						log.Error("ws: handler panic", "event", e.Kind.String(), "panic", fmt.Sprint(r),
							"not_logged", skipped, "stack", string(debug.Stack()))
					}
					if e.Kind != CloseEvent && e.Conn != nil {
						e.Conn.Close(StatusInternalError, "internal error")
					}
					err = nil
				}
			}()
			return next.Handle(e)
		})
	}
}

// Logging logs connection opens, closes and messages at debug level, and
// handler errors at warn level, about logBurst of them a second (the next
// logged one says how many were not). Nothing a client does logs a line at
// info level or above on its own: a flood of connections costs no log
// writes unless debug is on. The debug lines cost nothing unless debug is
// enabled. Give it a logger whose handler writes to a LogSink (and the
// server WithLogSink), so that a stalled log destination never stalls the
// loops.
func Logging(log *slog.Logger) Middleware {
	var lim logLimiter
	return func(next Handler) Handler {
		return HandlerFunc(func(e *Event) error {
			if log.Enabled(context.Background(), slog.LevelDebug) {
				switch e.Kind {
				case OpenEvent:
					log.Debug("ws: open", "remote", e.Conn.RemoteAddr(), "loop", e.Conn.Loop())
				case CloseEvent:
					if e.Err != nil {
						log.Debug("ws: close", "loop", e.Conn.Loop(), "code", int(e.Code), "err", e.Err)
					} else { // a clean closing handshake
						log.Debug("ws: close", "loop", e.Conn.Loop(), "code", int(e.Code))
					}
				case MessageEvent:
					log.Debug("ws: message", "loop", e.Conn.Loop(), "op", int(e.Op), "bytes", len(e.Data))
				}
			}
			err := next.Handle(e)
			if err != nil {
				if skipped, ok := lim.allow(); ok {
					log.Warn("ws: handler error", "event", e.Kind.String(), "err", err, "not_logged", skipped)
				}
			}
			return err
		})
	}
}

// logBurst is about how many lines a second a logLimiter lets through.
const logBurst = 10

// logLimiter passes about logBurst lines a second and counts the others.
// It is for lines a client can cause (one per connection, one per bad
// message): without it a flood of clients is a flood of log writes. Any
// goroutine may call it; it is a few atomics, on error paths only.
type logLimiter struct {
	next    atomic.Int64  // monotonic nanoseconds (since clockBase) when a line may pass again
	skipped atomic.Uint64 // lines held back since the last one let through
}

// allow reports whether a line may be logged now and, if so, how many were
// held back before it.
func (l *logLimiter) allow() (skipped uint64, ok bool) {
	now := int64(time.Since(clockBase))
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, max(next, now-int64(time.Second))+int64(time.Second)/logBurst) {
		l.skipped.Add(1)
		return 0, false
	}
	return l.skipped.Swap(0), true
}

// clockBase is the origin of HandlerMetrics' clock: time.Since(clockBase)
// reads only the monotonic clock, where time.Now also reads the wall clock
// (one clock read instead of two, per end of the measurement).
var clockBase = time.Now()

// HandlerMetrics counts the messages the handler processes and the errors
// it returns, and records how long one message in 16 took in a histogram,
// for Control.HandlerStats, Control.Stats and the hioload_handler_*
// metrics. Opens and closes pass through unmeasured. Per message it costs
// an atomic add on the loop's own cache line (counters are striped by
// loop), and for the timed one two monotonic clock readings; it allocates
// nothing. It
// times what is inside it: put it last to time the handler alone. A panic
// that unwinds through it is not counted (Recovery logs it). Install it
// once.
func HandlerMetrics(c *Control) Middleware {
	m := c.handlerMetrics()
	return func(next Handler) Handler {
		return HandlerFunc(func(e *Event) error {
			if e.Kind != MessageEvent {
				return next.Handle(e)
			}
			loop := 0
			if e.Conn != nil { // always set by the server; not by hand-made events
				loop = e.Conn.Loop()
			}
			s := m.stripe(loop)
			var err error
			if s.timeNext() {
				t0 := time.Since(clockBase)
				err = next.Handle(e)
				s.observe(time.Since(clockBase) - t0)
			} else {
				err = next.Handle(e)
			}
			s.processed.Add(1)
			if err != nil {
				s.errors.Add(1)
			}
			return err
		})
	}
}
