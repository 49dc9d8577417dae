//go:build !noreactor

package reactor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

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
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("getsockname", err)
		}
		e.addr = sockaddrToTCP(sa)
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

func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]).To16(), Port: s.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}
	}
	return nil
}

// accept takes up to a batch of pending connections.
func (l *Loop) accept() {
	for range len(l.p.events) {
		fd, sa, err := unix.Accept4(l.p.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
			if p := l.admit(sockaddrToTCP(sa).AddrPort()); p != nil {
				l.open(fd, p)
			} else {
				refuse(fd)
			}
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			l.acceptFailed(os.NewSyscallError("accept4", err))
			return
		default:
			count(&l.stats.AcceptFails, 1)
			l.log.Error("reactor: accept", "loop", l.idx, "err", os.NewSyscallError("accept4", err))
			return
		}
	}
}

// pauseAccepting stops polling the listener (level-triggered, it would
// report the same unacceptable connection every turn).
func (l *Loop) pauseAccepting() {
	if l.p.lfd >= 0 {
		unix.EpollCtl(l.p.epfd, unix.EPOLL_CTL_DEL, l.p.lfd, nil)
	}
}

func (l *Loop) resumeAccepting() {
	if l.p.lfd < 0 {
		return
	}
	if err := l.epollCtl(unix.EPOLL_CTL_ADD, l.p.lfd, unix.EPOLLIN, 0); err != nil {
		l.log.Error("reactor: resume accept", "loop", l.idx, "err", err)
	}
}

func (l *Loop) stopAccepting() {
	if l.p.lfd >= 0 {
		unix.EpollCtl(l.p.epfd, unix.EPOLL_CTL_DEL, l.p.lfd, nil)
		unix.Close(l.p.lfd)
		l.p.lfd = -1
	}
}

// open makes fd, just accepted and admitted for peer p, a connection of
// this loop.
func (l *Loop) open(fd int, p *peer) {
	// Latency first: replies go out as soon as writev hands them over.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if d := l.e.cfg.KeepAlive; d > 0 {
		setKeepAlive(fd, d)
	}
	l.p.gen++
	c := &Conn{loop: l, fd: fd, gen: l.p.gen, peer: p}
	if err := l.epollCtl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLRDHUP, c.gen); err != nil {
		l.log.Error("reactor: register connection", "loop", l.idx, "err", err)
		unix.Close(fd)
		l.unadmit(p)
		return
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, max(64, len(l.conns)))...)
	}
	l.conns[fd] = c
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
