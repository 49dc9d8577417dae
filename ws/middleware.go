package ws

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Recovery turns a panic in the handler into a close with 1011 for that
// connection; the loop and every other connection go on. The panic and its
// stack are logged at error level.
func Recovery(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(e *Event) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("ws: handler panic", "event", e.Kind.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
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

// Logging logs connection opens and closes at info level, messages at debug
// level, and handler errors at warn level. Message logging costs nothing
// unless debug is enabled.
func Logging(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(e *Event) error {
			switch e.Kind {
			case OpenEvent:
				log.Info("ws: open", "remote", e.Conn.RemoteAddr(), "loop", e.Conn.Loop())
			case CloseEvent:
				log.Info("ws: close", "loop", e.Conn.Loop(), "code", int(e.Code), "err", e.Err)
			case MessageEvent:
				if log.Enabled(context.Background(), slog.LevelDebug) {
					log.Debug("ws: message", "loop", e.Conn.Loop(), "op", int(e.Op), "bytes", len(e.Data))
				}
			}
			err := next.Handle(e)
			if err != nil {
				log.Warn("ws: handler error", "event", e.Kind.String(), "err", err)
			}
			return err
		})
	}
}
