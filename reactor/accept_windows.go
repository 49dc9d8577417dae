package reactor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows has no SO_REUSEPORT (SO_REUSEADDR there lets a second socket steal
// the port, it does not share it), and a socket belongs to one completion
// port. So the engine has one listening socket, on loop 0's port, with
// acceptDepth AcceptEx operations posted on it at all times. When one
// completes, loop 0 hands the new socket to the loops in turn: its own
// connections it opens itself, the others' it posts to their completion
// ports (keyHandoff, with the SOCKET as the byte count), where they associate it
// with their own port and own it from then on. The hand-off costs one
// PostQueuedCompletionStatus per connection, once; the connection's traffic
// never crosses threads.
const acceptDepth = 16

// sockaddrSpace is what AcceptEx needs per address: the largest sockaddr
// plus 16 bytes.
const sockaddrSpace = uint32(unsafe.Sizeof(windows.RawSockaddrAny{})) + 16

// acceptOp is one pending AcceptEx. The kernel writes into ov and buf until
// the completion is dequeued; both live in this heap object, which the
// acceptor's table keeps.
type acceptOp struct {
	ov      windows.Overlapped
	s       windows.Handle // the socket AcceptEx accepts into
	pending bool
	buf     [2 * sockaddrSpace]byte
}

// acceptor is loop 0's listening socket and its AcceptEx operations.
type acceptor struct {
	s       windows.Handle // InvalidHandle once closed
	family  int
	ops     [acceptDepth]*acceptOp
	next    int  // the loop that gets the next connection
	started bool // the operations were posted (start)
}

// listen binds the engine's one listening socket and sets e.addr. The
// socket has no SO_REUSEADDR, so the bind fails when another socket
// listens on the address (ErrAddrInUse); Windows cannot share a listening
// address between processes as SO_REUSEPORT does, so Config.ReusePort is
// refused.
func listen(e *Engine) (*acceptor, error) {
	if e.cfg.ReusePort {
		return nil, fmt.Errorf("%w: ReusePort (Windows cannot share a listening address between processes)", ErrUnsupported)
	}
	a, err := net.ResolveTCPAddr("tcp", e.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("reactor: listen %q: %w", e.cfg.Addr, err)
	}
	s, family, err := bindTCP(a)
	if errors.Is(err, windows.WSAEADDRINUSE) {
		return nil, fmt.Errorf("%w: %s (%w)", ErrAddrInUse, a, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reactor: listen %s: %w", a, err)
	}
	sa, err := windows.Getsockname(s)
	if err != nil {
		windows.Closesocket(s)
		return nil, os.NewSyscallError("getsockname", err)
	}
	e.addr = sockaddrToTCP(sa)
	ln := &acceptor{s: s, family: family}
	for i := range ln.ops {
		ln.ops[i] = &acceptOp{s: windows.InvalidHandle}
	}
	return ln, nil
}

// bindTCP binds an overlapped listening socket. An unspecified address
// becomes a dual-stack IPv6 socket, as on Linux.
func bindTCP(a *net.TCPAddr) (windows.Handle, int, error) {
	family, sa := windows.AF_INET, windows.Sockaddr(nil)
	switch ip4 := a.IP.To4(); {
	case a.IP == nil || a.IP.IsUnspecified() && ip4 == nil:
		family = windows.AF_INET6
		sa = &windows.SockaddrInet6{Port: a.Port}
	case ip4 != nil:
		s := &windows.SockaddrInet4{Port: a.Port}
		copy(s.Addr[:], ip4)
		sa = s
	default:
		family = windows.AF_INET6
		s := &windows.SockaddrInet6{Port: a.Port}
		copy(s.Addr[:], a.IP.To16())
		sa = s
	}
	s, err := newSocket(family)
	if err != nil && family == windows.AF_INET6 && a.IP == nil {
		family, sa = windows.AF_INET, &windows.SockaddrInet4{Port: a.Port}
		s, err = newSocket(family)
	}
	if err != nil {
		return windows.InvalidHandle, 0, err
	}
	if family == windows.AF_INET6 {
		windows.SetsockoptInt(s, windows.IPPROTO_IPV6, windows.IPV6_V6ONLY, 0)
	}
	if err := windows.Bind(s, sa); err != nil {
		windows.Closesocket(s)
		return windows.InvalidHandle, 0, os.NewSyscallError("bind", err)
	}
	if err := windows.Listen(s, windows.SOMAXCONN); err != nil {
		windows.Closesocket(s)
		return windows.InvalidHandle, 0, os.NewSyscallError("listen", err)
	}
	return s, family, nil
}

// newSocket makes an overlapped TCP socket that child processes do not
// inherit.
func newSocket(family int) (windows.Handle, error) {
	s, err := windows.WSASocket(int32(family), windows.SOCK_STREAM, windows.IPPROTO_TCP, nil, 0,
		windows.WSA_FLAG_OVERLAPPED|windows.WSA_FLAG_NO_HANDLE_INHERIT)
	if err != nil {
		return windows.InvalidHandle, os.NewSyscallError("WSASocket", err)
	}
	return s, nil
}

// start posts the AcceptEx operations; called on loop 0's thread.
func (ln *acceptor) start(l *Loop) {
	ln.started = true
	for _, op := range ln.ops {
		if !ln.post(l, op) {
			return
		}
	}
}

// post starts one AcceptEx. It reports false when sockets ran out, after
// pausing accepts for a tick.
func (ln *acceptor) post(l *Loop, op *acceptOp) bool {
	for ln.s != windows.InvalidHandle {
		s, err := newSocket(ln.family)
		if err != nil {
			l.acceptFailed(err)
			return false
		}
		op.s, op.ov = s, windows.Overlapped{}
		var n uint32
		err = windows.AcceptEx(ln.s, s, &op.buf[0], 0, sockaddrSpace, sockaddrSpace, &n, &op.ov)
		if err == nil || err == windows.ERROR_IO_PENDING {
			op.pending = true
			l.p.ops++
			return true
		}
		windows.Closesocket(s)
		op.s = windows.InvalidHandle
		if err != windows.WSAECONNRESET { // a client that gave up before we accepted: try again
			l.acceptFailed(os.NewSyscallError("AcceptEx", err))
			return false
		}
	}
	return false
}

// pauseAccepting needs no call: while Loop.acceptPause is set, completed
// AcceptEx operations are not reposted.
func (l *Loop) pauseAccepting() {}

// resumeAccepting reposts the operations a pause left idle.
func (l *Loop) resumeAccepting() {
	ln := l.p.ln
	if ln == nil {
		return
	}
	for _, op := range ln.ops {
		if !op.pending && !ln.post(l, op) {
			return
		}
	}
}

// stopAccepting closes the listening socket; pending AcceptEx operations
// then complete as cancelled, and done closes their sockets.
func (l *Loop) stopAccepting() {
	if ln := l.p.ln; ln != nil && ln.s != windows.InvalidHandle {
		windows.Closesocket(ln.s)
		ln.s = windows.InvalidHandle
	}
}

// done handles a completed AcceptEx (ov is its OVERLAPPED) and posts the
// next one in its place.
func (ln *acceptor) done(l *Loop, ov *windows.Overlapped) {
	var op *acceptOp
	for _, o := range ln.ops {
		if &o.ov == ov {
			op = o
			break
		}
	}
	if op == nil {
		l.log.Error("reactor: completion for an unknown AcceptEx", "loop", l.idx)
		return
	}
	op.pending = false
	s := op.s
	op.s = windows.InvalidHandle
	st := windows.NTStatus(op.ov.Internal)
	switch {
	case ln.s == windows.InvalidHandle || l.stopping:
		windows.Closesocket(s) // listener closed: shutting down
		return
	case st != windows.STATUS_SUCCESS:
		windows.Closesocket(s)
		// A client that reset before we took it costs nothing; anything
		// else (out of buffers, say) pauses accepting for a tick rather
		// than spin on failing completions, as EMFILE does on Linux.
		if err := st.Errno(); err != windows.WSAECONNRESET && err != windows.ERROR_NETNAME_DELETED {
			l.acceptFailed(os.NewSyscallError("AcceptEx", err))
		}
	default:
		// Without SO_UPDATE_ACCEPT_CONTEXT the socket has no addresses and
		// shutdown fails on it.
		lsock := ln.s
		if err := windows.Setsockopt(s, windows.SOL_SOCKET, windows.SO_UPDATE_ACCEPT_CONTEXT,
			(*byte)(unsafe.Pointer(&lsock)), int32(unsafe.Sizeof(lsock))); err != nil {
			windows.Closesocket(s)
			count(&l.stats.AcceptFails, 1)
			l.log.Error("reactor: accept", "loop", l.idx, "err", os.NewSyscallError("setsockopt SO_UPDATE_ACCEPT_CONTEXT", err))
			break
		}
		ln.dispatch(l, s)
	}
	if l.acceptPause == 0 {
		ln.post(l, op)
	}
}

// dispatch gives s to the next loop in turn.
func (ln *acceptor) dispatch(l *Loop, s windows.Handle) {
	loops := l.e.loops
	to := loops[ln.next%len(loops)]
	ln.next = (ln.next + 1) % len(loops)
	if to == l {
		l.open(s)
		return
	}
	if err := to.post(keyHandoff, uint32(s)); err != nil {
		windows.Closesocket(s) // that loop has stopped
		count(&l.stats.AcceptFails, 1)
	}
}

func sockaddrToTCP(sa windows.Sockaddr) *net.TCPAddr {
	switch s := sa.(type) {
	case *windows.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]).To16(), Port: s.Port}
	case *windows.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}
	}
	return nil
}
