//go:build !noreactor

package reactor

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestAcceptAllocatesNothing: accepting a connection and asking its peer's
// address allocate nothing (unix.Accept4 made three heap objects per
// connection: garbage an accept burst left among the connections, which
// idle memory per connection paid for), and the address is the one the
// client dialled from, IPv4 and IPv6.
func TestAcceptAllocatesNothing(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s loopback here: %v", tc.network, err)
			}
			defer ln.Close()
			f, err := ln.(*net.TCPListener).File()
			require.NoError(t, err)
			defer f.Close()
			lfd := int(f.Fd())
			require.NoError(t, unix.SetNonblock(lfd, true))

			const n = 50
			var clients []netip.AddrPort
			for range n + 1 {
				c, err := net.Dial(tc.network, ln.Addr().String())
				require.NoError(t, err)
				defer c.Close()
				clients = append(clients, c.LocalAddr().(*net.TCPAddr).AddrPort())
			}
			var r rawAddr
			var got []netip.AddrPort
			var peers []netip.AddrPort
			got, peers = make([]netip.AddrPort, 0, n+1), make([]netip.AddrPort, 0, n+1)
			allocs := testing.AllocsPerRun(n, func() {
				fd, ap, err := r.accept4(lfd)
				if err != nil {
					panic(err)
				}
				got = append(got, ap)
				peers = append(peers, r.peer(fd))
				unix.Close(fd)
			})
			require.Zero(t, allocs, "allocations per accept")
			require.ElementsMatch(t, clients, got, "accept4's addresses are the clients'")
			require.Equal(t, got, peers, "getpeername agrees")

			_, _, err = r.accept4(lfd)
			require.ErrorIs(t, err, unix.EAGAIN, "nobody left to accept")
			require.Equal(t, netip.AddrPort{}, r.peer(lfd+1000), "no such socket: the zero address")
		})
	}
}

// TestConnSize holds an idle connection's reactor state to 80 bytes on
// 64-bit Linux, a size class of the Go allocator (88 took 96): memory per
// idle connection is a figure users choose a server by.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit platforms only")
	}
	require.EqualValues(t, 80, unsafe.Sizeof(Conn{}))
}

// TestAckedAllocatesNothing: the write stall clock's question to the
// kernel (TCP_INFO's bytes acked) allocates nothing (x/sys's
// GetsockoptTCPInfo allocated 288 bytes per call, per watched connection
// per tick), and its answer grows as the peer acknowledges bytes.
func TestAckedAllocatesNothing(t *testing.T) {
	_, l := memEngine(t, 0)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()
	f, err := server.(*net.TCPConn).File()
	require.NoError(t, err)
	defer f.Close()
	c := &Conn{loop: l, fd: sockFD(f.Fd())}

	a0, ok := c.acked()
	require.True(t, ok)
	require.Zero(t, testing.AllocsPerRun(100, func() { c.acked() }))
	_, err = f.Write(make([]byte, 100<<10))
	require.NoError(t, err)
	require.Eventually(t, func() bool { a, _ := c.acked(); return a >= a0+100<<10 }, 5*time.Second, 10*time.Millisecond,
		"the peer's kernel acknowledges what it receives")
}
