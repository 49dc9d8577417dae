package ws

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	t.Cleanup(func() { srv.Shutdown(); <-done })

	c := dialWS(t, srv.Addr().String())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(maskedFrame(OpText, true, []byte("hi")))
	_, p := readFrame(t, c)
	require.Equal(t, "hi", string(p))
	c.Write(maskedFrame(OpClose, true, []byte{0x03, 0xe8}))
	readFrame(t, c)
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
			t.Cleanup(func() { srv.Shutdown(); <-done })

			bad := dialWS(t, srv.Addr().String())
			defer bad.Close()
			bad.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.panicOn == MessageEvent {
				bad.Write(maskedFrame(OpText, true, []byte("boom")))
			}
			hdr, p := readFrame(t, bad)
			require.Equal(t, OpClose, hdr.OpCode)
			require.Equal(t, StatusInternalError, StatusCode(binary.BigEndian.Uint16(p)))
			bad.Write(maskedFrame(OpClose, true, p[:2]))
			bad.Close()

			good := dialWS(t, srv.Addr().String())
			defer good.Close()
			good.SetDeadline(time.Now().Add(5 * time.Second))
			good.Write(maskedFrame(OpText, true, []byte("fine")))
			_, p = readFrame(t, good)
			require.Equal(t, "fine", string(p))

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
