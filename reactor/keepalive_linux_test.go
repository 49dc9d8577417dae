//go:build !noreactor

package reactor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestKeepAliveOnAccepted is issue 14's point 4: accepted sockets probe a
// silent peer (Config.KeepAlive), so that one that vanished without a FIN
// is found; before, they had no keepalive at all.
func TestKeepAliveOnAccepted(t *testing.T) {
	for _, tc := range []struct {
		keepAlive time.Duration
		on, idle  int
	}{
		{15 * time.Second, 1, 15},
		{0, 0, -1},
	} {
		h := newEchoHandler()
		fds := make(chan int, 1)
		h.onOpen = func(c *Conn) { fds <- int(c.fd) }
		e := startEngine(t, h, 1, func(c *Config) { c.KeepAlive = tc.keepAlive })
		dialEngine(t, e)
		fd := <-fds
		type opts struct{ on, idle, intvl, cnt int }
		got := make(chan opts, 1)
		e.Loops()[0].Post(Task{Fn: func() { // on the loop, while the fd is surely open
			var o opts
			o.on, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			o.idle, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
			o.intvl, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
			o.cnt, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
			got <- o
		}})
		o := <-got
		require.Equal(t, tc.on, o.on, "SO_KEEPALIVE with KeepAlive %s", tc.keepAlive)
		if tc.idle > 0 {
			require.Equal(t, tc.idle, o.idle, "TCP_KEEPIDLE")
			require.Equal(t, tc.idle, o.intvl, "TCP_KEEPINTVL")
			require.Equal(t, keepAliveProbes, o.cnt, "TCP_KEEPCNT")
		}
	}
}
