package ws

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// recorder collects what middlewares and the handler see, per event kind.
type recorder struct {
	mu     sync.Mutex
	byKind map[EventKind][]string
	closed chan struct{}
}

func (r *recorder) add(k EventKind, s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKind[k] = append(r.byKind[k], s)
}

func (r *recorder) mw(name string) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(e *Event) error {
			r.add(e.Kind, name+">")
			err := next.Handle(e)
			r.add(e.Kind, "<"+name)
			return err
		})
	}
}

// TestMiddlewareOrder: middlewares from WithMiddleware and UseMiddleware
// compose in registration order, the first registered outermost, for every
// kind of event.
func TestMiddlewareOrder(t *testing.T) {
	r := &recorder{byKind: map[EventKind][]string{}, closed: make(chan struct{})}
	h := HandlerFunc(func(e *Event) error {
		r.add(e.Kind, "handler")
		if e.Kind == CloseEvent {
			close(r.closed)
		}
		return echoHandler(e)
	})
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ListenAddr = "127.0.0.1:0"
	srv, err := NewServer(cfg, WithMiddleware(r.mw("a"), r.mw("b")))
	require.NoError(t, err)
	srv.UseMiddleware(r.mw("c"))
	srv.UseMiddleware(r.mw("d"))
	done := make(chan error, 1)
	go func() { done <- srv.Run(h) }()
	t.Cleanup(func() { require.NoError(t, srv.Shutdown()); require.NoError(t, <-done) })

	c := wstest.Dial(t, srv.Addr().String())
	c.Write(t, wstest.Text([]byte("hi")))
	c.ExpectMessage(t, OpText, []byte("hi"))
	c.Write(t, wstest.Close(1000, ""))
	c.Next(t)
	c.Close()
	select {
	case <-r.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("no close event")
	}

	want := strings.Fields("a> b> c> d> handler <d <c <b <a")
	// The handler saw the close; the middlewares around it record their
	// way out just after, on the loop thread.
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.byKind[CloseEvent]) == len(want)
	}, 5*time.Second, time.Millisecond)
	for _, k := range []EventKind{OpenEvent, MessageEvent, CloseEvent} {
		t.Run(k.String(), func(t *testing.T) {
			r.mu.Lock()
			defer r.mu.Unlock()
			require.Equal(t, want, r.byKind[k])
		})
	}
}

// TestRecoveryInChain: a panic on open or on a message, inside Logging and
// around HandlerMetrics, closes only that connection with 1011; the outer
// middlewares still see the close event, the server goes on serving
// another client, and the close is counted by code.
func TestRecoveryInChain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		panicOn EventKind
	}{{"open", OpenEvent}, {"message", MessageEvent}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var closes []StatusCode
			armed := make(chan struct{}, 1)
			armed <- struct{}{} // panic once
			h := HandlerFunc(func(e *Event) error {
				if e.Kind == tc.panicOn {
					select {
					case <-armed:
						panic(fmt.Sprintf("bug in %s", e.Kind))
					default:
					}
				}
				return echoHandler(e)
			})
			watch := func(next Handler) Handler {
				return HandlerFunc(func(e *Event) error {
					if e.Kind == CloseEvent {
						mu.Lock()
						closes = append(closes, e.Code)
						mu.Unlock()
					}
					return next.Handle(e)
				})
			}
			cfg := DefaultConfig()
			cfg.Workers = 1
			cfg.ListenAddr = "127.0.0.1:0"
			srv, err := NewServer(cfg, WithMiddleware(watch, Logging(discardLogger()), Recovery(discardLogger())))
			require.NoError(t, err)
			srv.UseMiddleware(HandlerMetrics(srv.GetControl()))
			done := make(chan error, 1)
			go func() { done <- srv.Run(h) }()
			t.Cleanup(func() { require.NoError(t, srv.Shutdown()); require.NoError(t, <-done) })

			bad := wstest.Dial(t, srv.Addr().String())
			defer bad.Close()
			if tc.panicOn == MessageEvent {
				bad.Write(t, wstest.Text([]byte("boom")))
			}
			f := bad.Next(t)
			require.Equal(t, OpClose, f.Op)
			require.Equal(t, StatusInternalError, StatusCode(binary.BigEndian.Uint16(f.Payload)))
			bad.Conn().Write(wstest.Data(OpClose, true, f.Payload[:2]))
			bad.Close()

			good := wstest.Dial(t, srv.Addr().String())
			defer good.Close()
			good.Write(t, wstest.Text([]byte("fine")))
			good.ExpectMessage(t, OpText, []byte("fine"))

			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(closes) == 1
			}, 5*time.Second, 10*time.Millisecond)
			mu.Lock()
			first := closes[0]
			mu.Unlock()
			require.Equal(t, StatusInternalError, first)
			require.Equal(t, uint64(1), srv.Stats().CloseCodes[StatusInternalError])
			require.Equal(t, uint64(1), srv.GetControl().HandlerStats().Processed, "only the good message is counted")
		})
	}
}
