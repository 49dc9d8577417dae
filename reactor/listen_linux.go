package reactor

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// listen opens loop idx's SO_REUSEPORT socket. The first loop binds the
// configured address; the others bind the port it got, so that ":0" yields
// one port shared by every loop and the kernel spreads connections across
// them with no hand-off between threads.
func listen(e *Engine, idx int) (int, error) {
	var tcp *net.TCPAddr
	if idx == 0 {
		a, err := net.ResolveTCPAddr("tcp", e.cfg.Addr)
		if err != nil {
			return -1, fmt.Errorf("reactor: listen %q: %w", e.cfg.Addr, err)
		}
		tcp = a
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

// bindTCP binds a non-blocking listening socket. An unspecified address
// (":9001") becomes a dual-stack IPv6 socket so that clients resolving
// "localhost" to ::1 (Node.js does) and to 127.0.0.1 both connect.
func bindTCP(a *net.TCPAddr) (int, error) {
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
		return -1, os.NewSyscallError("socket", err)
	}
	opts := [][2]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT}}
	if family == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
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

func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]).To16(), Port: s.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}
	}
	return nil
}
