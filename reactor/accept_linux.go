//go:build !noreactor

package reactor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listen opens loop idx's SO_REUSEPORT socket. The first loop binds the
// configured address; the others bind the port it got, so that ":0" yields
// one port shared by every loop. Before the first bind it checks that no
// other socket listens on the address: with SO_REUSEPORT the loops' binds
// would silently join another process's listeners (a second server started
// by mistake would take half the connections), unless Config.ReusePort
// says that sharing is the intent.
func listen(e *Engine, idx int) (int, error) {
	var tcp *net.TCPAddr
	if idx == 0 {
		a, err := net.ResolveTCPAddr("tcp", e.cfg.Addr)
		if err != nil {
			return -1, fmt.Errorf("reactor: listen %q: %w", e.cfg.Addr, err)
		}
		tcp = a
		if a.Port != 0 && !e.cfg.ReusePort {
			if err := checkFree(a); err != nil {
				return -1, err
			}
		}
	} else {
		tcp = e.addr.(*net.TCPAddr)
	}
	fd, err := bindTCP(tcp)
	if err != nil {
		return -1, fmt.Errorf("reactor: listen %s: %w", tcp, err)
	}
	if idx == 0 {
		var r rawAddr
		ap, err := r.name(unix.SYS_GETSOCKNAME, fd)
		if err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("getsockname", err)
		}
		e.addr = net.TCPAddrFromAddrPort(ap)
	}
	return fd, nil
}

// checkFree binds a socket to a as the loops' sockets would be bound, but
// without SO_REUSEPORT, and closes it: the bind fails with EADDRINUSE when
// any socket listens there, a SO_REUSEPORT one of another process
// included. (SO_REUSEADDR still lets it past connections of an earlier
// run in TIME_WAIT.) Two processes that start within the same moment can
// both pass it: the check is for the common mistake, not a lock.
func checkFree(a *net.TCPAddr) error {
	fd, sa, err := socketFor(a)
	if err != nil {
		return fmt.Errorf("reactor: listen %s: %w", a, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("%w: %s (%w)", ErrAddrInUse, a, os.NewSyscallError("bind", err))
		}
		return fmt.Errorf("reactor: listen %s: %w", a, os.NewSyscallError("bind", err))
	}
	return nil
}

// bindTCP binds a non-blocking listening socket that the loops share
// (SO_REUSEPORT).
func bindTCP(a *net.TCPAddr) (int, error) {
	fd, sa, err := socketFor(a)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

// socketFor makes a non-blocking TCP socket for address a, with
// SO_REUSEADDR, and returns it with the sockaddr to bind. An unspecified
// address (":9001") becomes a dual-stack IPv6 socket so that clients
// resolving "localhost" to ::1 (Node.js does) and to 127.0.0.1 both
// connect.
func socketFor(a *net.TCPAddr) (int, unix.Sockaddr, error) {
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	switch ip4 := a.IP.To4(); {
	case a.IP == nil || a.IP.IsUnspecified() && ip4 == nil:
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: a.Port}
	case ip4 != nil:
		s := &unix.SockaddrInet4{Port: a.Port}
		copy(s.Addr[:], ip4)
		sa = s
	default:
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: a.Port}
		copy(s.Addr[:], a.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil && family == unix.AF_INET6 && a.IP == nil {
		// No IPv6 on this host: fall back to IPv4 any.
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: a.Port}
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	if family == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError("setsockopt", err)
	}
	return fd, sa, nil
}

// refuse closes a connection the admission caps turned away, with a reset
// (SO_LINGER 0): no FIN handshake and no TIME_WAIT left behind for a
// client that is being refused.
func refuse(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

// acceptError acts on an accept failure (from accept4 or a multishot
// accept's completion) and reports whether accepting may go on now:
// aborted handshakes and interrupts are skipped, running out of
// descriptors or memory pauses accepting for a tick, anything else is
// logged.
func (l *Loop) acceptError(err error) bool {
	switch {
	case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
		return true
	case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
		l.acceptFailed(os.NewSyscallError("accept4", err))
	default:
		count(&l.stats.AcceptFails, 1)
		l.log.Error("reactor: accept", "loop", l.idx, "err", os.NewSyscallError("accept4", err))
	}
	return false
}

// accepted admits fd, just accepted from ap (the zero AddrPort when the
// address is unknown), and opens it, or refuses it with a reset (peer.go).
func (l *Loop) accepted(fd int, ap netip.AddrPort) {
	if p := l.admit(ap); p != nil {
		l.open(fd, p)
	} else {
		refuse(fd)
	}
}

// rawAddr is a socket address as the kernel writes it: accept4 and
// getpeername write into the loop's one (poller.sa), so that accepting
// a connection allocates nothing but the connection (unix.Accept4 and
// unix.Getpeername make three heap objects per call, garbage that an
// accept burst leaves among the connections it creates). It is the one
// decoder of the kernel's socket addresses on Linux (RemoteAddr and the
// listener's address use it too).
type rawAddr struct {
	any unix.RawSockaddrAny
	len uint32
}

// accept4 accepts a connection on lfd (non-blocking, close-on-exec) and
// returns it with its peer's address.
func (r *rawAddr) accept4(lfd int) (int, netip.AddrPort, error) {
	r.len = unix.SizeofSockaddrAny
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&r.any)), uintptr(unsafe.Pointer(&r.len)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(fd), r.addrPort(), nil
}

// peer returns fd's peer address (getpeername), or the zero AddrPort.
func (r *rawAddr) peer(fd int) netip.AddrPort {
	ap, _ := r.name(unix.SYS_GETPEERNAME, fd)
	return ap
}

// name asks the kernel for one of fd's addresses: trap is getpeername or
// getsockname.
func (r *rawAddr) name(trap uintptr, fd int) (netip.AddrPort, error) {
	r.len = unix.SizeofSockaddrAny
	_, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&r.any)), uintptr(unsafe.Pointer(&r.len)))
	if e != 0 {
		return netip.AddrPort{}, e
	}
	return r.addrPort(), nil
}

// addrPort decodes the address last written (IPv4 or IPv6; the IPv6 zone
// is left out: a peer's share is keyed by its /64, peer.go).
func (r *rawAddr) addrPort() netip.AddrPort {
	switch r.any.Addr.Family {
	case unix.AF_INET:
		if r.len < unix.SizeofSockaddrInet4 {
			break
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.any))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netPort(sa.Port))
	case unix.AF_INET6:
		if r.len < unix.SizeofSockaddrInet6 {
			break
		}
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.any))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), netPort(sa.Port))
	}
	return netip.AddrPort{}
}

// netPort is a port as the kernel stores it (network byte order) in host
// order.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// open makes fd, just accepted and admitted for peer p, a connection of
// this loop.
func (l *Loop) open(fd int, p *peer) {
	// Latency first: replies go out as soon as the kernel takes them.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if d := l.e.cfg.KeepAlive; d > 0 {
		setKeepAlive(fd, d)
	}
	slot, ok := l.newSlot()
	if !ok {
		count(&l.stats.AcceptFails, 1)
		unix.Close(fd)
		l.unadmit(p)
		return
	}
	l.p.gen++
	c := &Conn{loop: l, fd: sockFD(fd), gen: l.p.gen, slot: slot, peer: p}
	l.conns[slot] = c
	if err := l.p.eng.register(c); err != nil {
		l.log.Error("reactor: register connection", "loop", l.idx, "err", err)
		unix.Close(fd)
		c.retire()
		l.unadmit(p)
		return
	}
	l.opened(c)
}

// keepAliveProbes is how many unanswered probes drop a connection (Linux's
// default, as Go's net package leaves it).
const keepAliveProbes = 9

// setKeepAlive turns TCP keepalive on: the first probe after d of silence,
// then one every d, as net.Dialer and net/http's listener do with 15 s.
// Best effort: a refused option leaves the connection as it was.
func setKeepAlive(fd int, d time.Duration) {
	secs := max(int(d/time.Second), 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveProbes)
}
