package ws_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// echoApp is the echo program's handler.
var echoApp = ws.HandlerFunc(func(e *ws.Event) error {
	if e.Kind == ws.MessageEvent {
		return e.Conn.WriteMessage(e.Op, e.Data)
	}
	return nil
})

// startEcho runs the real server (the echo program's handler) on
// 127.0.0.1:0 with the defaults changed by mod, and returns its address.
// The server is shut down when t's cleanup runs, i.e. after all of t's
// parallel subtests; the shutdown must be graceful.
func startEcho(t testing.TB, mod func(*ws.Config)) string {
	t.Helper()
	return startServerRunning(t, mod, echoApp).Addr().String()
}

// startEchoServer is startEcho, returning the server (for its Stats).
func startEchoServer(t testing.TB, mod func(*ws.Config)) *ws.Server {
	t.Helper()
	return startServerRunning(t, mod, echoApp)
}

// startServer is startEcho with another handler.
func startServer(t testing.TB, mod func(*ws.Config), h ws.Handler) string {
	t.Helper()
	return startServerRunning(t, mod, h).Addr().String()
}

func startServerRunning(t testing.TB, mod func(*ws.Config), h ws.Handler) *ws.Server {
	t.Helper()
	cfg := ws.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Workers = 2
	cfg.ShutdownTimeout = time.Second
	cfg.LingerTimeout = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	srv, err := ws.NewServer(cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(h)
	}()
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown())
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(wstest.Timeout):
			t.Error("Run did not return after Shutdown")
		}
	})
	return srv
}

// step is one action or expectation of a conformance case.
type step func(t testing.TB, c *wstest.Client)

// send writes frames (concatenated) in one write.
func send(frames ...[]byte) step {
	b := bytes.Join(frames, nil)
	return func(t testing.TB, c *wstest.Client) { c.Write(t, b) }
}

// sendEach writes each frame in its own write, pausing between them.
func sendEach(pause time.Duration, frames ...[]byte) step {
	return func(t testing.TB, c *wstest.Client) {
		for i, f := range frames {
			if i > 0 && pause > 0 {
				time.Sleep(pause)
			}
			c.Write(t, f)
		}
	}
}

// sendChopped writes the frames' bytes chunk bytes at a time.
func sendChopped(chunk int, pause time.Duration, frames ...[]byte) step {
	b := bytes.Join(frames, nil)
	return func(t testing.TB, c *wstest.Client) { c.WriteChopped(t, b, chunk, pause) }
}

// pause waits d.
func pause(d time.Duration) step { return func(testing.TB, *wstest.Client) { time.Sleep(d) } }

func expectText(p []byte) step {
	return func(t testing.TB, c *wstest.Client) { c.ExpectMessage(t, gws.OpText, p) }
}
func expectTextS(p string) step { return expectText([]byte(p)) }
func expectBinary(p []byte) step {
	return func(t testing.TB, c *wstest.Client) { c.ExpectMessage(t, gws.OpBinary, p) }
}
func expectPong(p []byte) step {
	return func(t testing.TB, c *wstest.Client) { c.ExpectMessage(t, gws.OpPong, p) }
}

// expectFail expects the server to fail the connection: a close frame with
// code and then EOF.
func expectFail(code int) step {
	return func(t testing.TB, c *wstest.Client) { c.ExpectClose(t, code, false) }
}

// expectCloseEcho expects the server's answer to the client's close: the
// same code alone (code < 0: an empty close), then EOF.
func expectCloseEcho(code int) step {
	return func(t testing.TB, c *wstest.Client) { c.ExpectClose(t, code, true) }
}

// closeNormally runs the closing handshake with 1000. Ending a case with it
// also proves that the server sent nothing unexpected before.
func closeNormally() []step { return []step{send(wstest.Close(1000, "")), expectCloseEcho(1000)} }

// steps flattens step lists, for building cases.
func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch v := p.(type) {
		case step:
			out = append(out, v)
		case func(testing.TB, *wstest.Client):
			out = append(out, v)
		case []step:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("steps: %T", p))
		}
	}
	return out
}
