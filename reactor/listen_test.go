package reactor

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unpinned is a config of that many unpinned loops on addr.
func unpinned(addr string, loops int) Config {
	cfg := Config{Addr: addr, LingerTimeout: 500 * time.Millisecond}
	for range loops {
		cfg.Loops = append(cfg.Loops, LoopSpec{CPU: -1, Node: -1})
	}
	return cfg
}

// TestListenRefusesAddressInUse is issue #14's point 7: a second engine
// (a second echo process, say) on the address of a running one used to
// join its SO_REUSEPORT group silently and take half its connections. It
// is refused now, with an error naming the address, as is an address a
// plain listener holds.
func TestListenRefusesAddressInUse(t *testing.T) {
	e1 := startLines(t, &lineEcho{}, 2)
	addr := e1.Addr().String()
	_, err := New(unpinned(addr, 2), &lineEcho{})
	require.ErrorIs(t, err, ErrAddrInUse)
	require.Contains(t, err.Error(), addr)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = New(unpinned(ln.Addr().String(), 1), &lineEcho{})
	require.ErrorIs(t, err, ErrAddrInUse)

	// The first engine is untouched: it still serves.
	roundTrip(t, dialEngine(t, e1), []byte("still here\n"))
}

// TestListenReusePort: with ReusePort, sharing the address is the intent:
// on Linux the second engine joins and both serve; Windows cannot share
// and says so.
func TestListenReusePort(t *testing.T) {
	e1 := startLines(t, &lineEcho{}, 1)
	cfg := unpinned(e1.Addr().String(), 1)
	cfg.ReusePort = true
	e2, err := New(cfg, &lineEcho{})
	if runtime.GOOS == "windows" {
		require.ErrorIs(t, err, ErrUnsupported)
		return
	}
	require.NoError(t, err)
	e2.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer e2.Shutdown(ctx)
	roundTrip(t, dialEngine(t, e2), []byte("shared\n"))
}

// TestListenAfterRestart: the check does not stop a restart on the same
// port while the last run's closed connections sit in TIME_WAIT.
func TestListenAfterRestart(t *testing.T) {
	h := &lineEcho{closeErrs: make(chan error, 1)}
	e1, err := New(unpinned("127.0.0.1:0", 1), h)
	require.NoError(t, err)
	e1.Start()
	addr := e1.Addr().String()
	c := dialEngine(t, e1)
	c.Write([]byte("deadline\n")) // the server closes first: its side goes to TIME_WAIT
	r := bufio.NewReader(c)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			break
		}
	}
	c.Close()
	<-h.closeErrs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e1.Shutdown(ctx))

	e2, err := New(unpinned(addr, 1), &lineEcho{})
	require.NoError(t, err, "a restart on the same address")
	e2.Start()
	require.NoError(t, e2.Shutdown(ctx))
}
