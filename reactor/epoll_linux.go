//go:build !noreactor

package reactor

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The epoll engine. Each loop owns an epoll instance watching its eventfd,
// its own SO_REUSEPORT listening socket (accept_linux.go) and its
// connections, so the kernel spreads connections across loops with no
// hand-off between threads. Connections are registered level-triggered for
// input, and for output only while their write queue holds bytes. A turn
// is one epoll_wait, then per ready connection one read(2) into the loop's
// read buffer and one writev(2) of the replies. The epoll data holds the
// connection's slot and generation, so that events for a closed (and
// reused) slot are dropped.
type epollEngine struct {
	epfd   int
	events []unix.EpollEvent
}

// Epoll data of the two descriptors that are not connections (a
// connection's data is its slot, from 0 up, and its generation).
const (
	epollListener = -1
	epollWake     = -2
)

func (e *epollEngine) open(l *Loop) (err error) {
	if e.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err = e.ctl(unix.EPOLL_CTL_ADD, l.p.efd, unix.EPOLLIN, epollWake, 0); err != nil {
		return err
	}
	return e.ctl(unix.EPOLL_CTL_ADD, l.p.lfd, unix.EPOLLIN, epollListener, 0)
}

func (e *epollEngine) ctl(op, fd int, events uint32, slot int32, gen uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: slot, Pad: int32(gen)}
	if err := unix.EpollCtl(e.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (e *epollEngine) close(*Loop) {
	if e.epfd >= 0 {
		unix.Close(e.epfd)
		e.epfd = -1
	}
}

// settle has nothing to wait for: epoll holds no buffers of ours.
func (e *epollEngine) settle(*Loop) {}

func (e *epollEngine) poll(l *Loop, timeout time.Duration) (int, error) {
	if b := int(l.batch.Load()); b != len(e.events) {
		e.events = make([]unix.EpollEvent, b)
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	n, err := e.wait(ms, l.rawWait)
	l.now = time.Now().UnixNano()
	if err != nil {
		return 0, err
	}
	for i := range n {
		ev := &e.events[i]
		switch ev.Fd {
		case epollWake:
			var buf [8]byte
			unix.Read(l.p.efd, buf[:])
			l.handleWake()
		case epollListener:
			e.accept(l)
		default:
			e.connEvent(l, uint32(ev.Fd), uint32(ev.Pad), ev.Events)
		}
	}
	return n, nil
}

// wait is epoll_wait(2) (epoll_pwait with no mask) in the loop's wait mode;
// a signal ends it early without error.
func (e *epollEngine) wait(ms int, raw bool) (int, error) {
	ptr := uintptr(unsafe.Pointer(&e.events[0]))
	var r uintptr
	var errno unix.Errno
	if raw || ms == 0 {
		r, _, errno = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(e.epfd), ptr, uintptr(len(e.events)), uintptr(ms), 0, 0)
	} else {
		r, _, errno = unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(e.epfd), ptr, uintptr(len(e.events)), uintptr(ms), 0, 0)
	}
	switch errno {
	case 0:
		return int(r), nil
	case unix.EINTR:
		return 0, nil
	}
	return 0, os.NewSyscallError("epoll_wait", errno)
}

// connEvent hands an event to its connection, unless it is stale: the slot
// was closed (and maybe reused) earlier in this batch.
func (e *epollEngine) connEvent(l *Loop, slot, gen uint32, events uint32) {
	c := l.connAt(slot, gen)
	if c == nil || c.flags&fClosed != 0 {
		return
	}
	if events&unix.EPOLLOUT != 0 {
		e.drainOut(c)
		if c.flags&fClosed != 0 {
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.flags&fPeerEOF == 0 {
		l.read(c)
	}
}

// accept takes up to a batch of pending connections.
func (e *epollEngine) accept(l *Loop) {
	for range len(e.events) {
		fd, ap, err := l.p.sa.accept4(l.p.lfd)
		if err == nil {
			l.accepted(fd, ap)
			continue
		}
		if errors.Is(err, unix.EAGAIN) || !l.acceptError(err) {
			return
		}
	}
}

// register watches a new connection's input.
func (e *epollEngine) register(c *Conn) error {
	return e.ctl(unix.EPOLL_CTL_ADD, int(c.fd), unix.EPOLLIN|unix.EPOLLRDHUP, int32(c.slot), c.gen)
}

// pauseAccepting stops polling the listener (level-triggered, it would
// report the same unacceptable connection every turn).
func (e *epollEngine) pauseAccepting(l *Loop) {
	if l.p.lfd >= 0 {
		unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, l.p.lfd, nil)
	}
}

func (e *epollEngine) resumeAccepting(l *Loop) {
	if l.p.lfd < 0 {
		return
	}
	if err := e.ctl(unix.EPOLL_CTL_ADD, l.p.lfd, unix.EPOLLIN, epollListener, 0); err != nil {
		l.log.Error("reactor: resume accept", "loop", l.idx, "err", err)
	}
}

func (e *epollEngine) stopAccepting(l *Loop) {
	if e.epfd >= 0 {
		unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, l.p.lfd, nil)
	}
	unix.Close(l.p.lfd)
	l.p.lfd = -1
}

// send is one writev(2): epoll sends synchronously.
func (e *epollEngine) send(c *Conn, bufs [][]byte) (int, error) { return c.writev(bufs) }

// startOutput moves the write queue to the front (c.io.flight) if that is
// empty and asks epoll to report when the socket takes more.
func (e *epollEngine) startOutput(c *Conn) {
	e.takeOut(c)
	e.pollOut(c, true)
}

// takeOut makes sure the front holds unsent bytes if any are queued: once
// it is drained, its memory goes back and c.io.out becomes the front, so
// that queued bytes are never moved to make room for new ones. It reports
// false when nothing is queued.
func (e *epollEngine) takeOut(c *Conn) bool {
	io := c.io
	if io == nil {
		return false
	}
	if len(io.flight.b) > 0 {
		return true
	}
	io.flight.free(c)
	if c.queuedOut() == 0 {
		return false
	}
	io.flight.take(c)
	return true
}

// drainOut writes queued output when the socket became writable: at most
// writeSlice bytes per event, so that a long queue is sent in slices while
// the loop's other connections take their turns (epoll reports the socket
// writable again next turn).
func (e *epollEngine) drainOut(c *Conn) {
	budget := writeSlice
	for budget > 0 && e.takeOut(c) {
		f := &c.io.flight
		n, err := unix.Write(int(c.fd), f.b[:min(len(f.b), budget)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil {
			c.closeNow(os.NewSyscallError("write", err))
			return
		}
		f.sent(c, n)
		budget -= n
	}
	if c.Queued() > 0 {
		return // the budget is spent: more next turn
	}
	e.pollOut(c, false)
	if c.io != nil {
		c.io.flight.free(c)
	}
	c.outputDone()
}

// pollOut registers (or unregisters) interest in writability; after the
// peer's EOF, input is no longer watched (EOF stays readable forever).
func (e *epollEngine) pollOut(c *Conn, on bool) {
	if on == (c.flags&fPollOut != 0) {
		return
	}
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if c.flags&fPeerEOF != 0 {
		ev = 0
	}
	if on {
		ev |= unix.EPOLLOUT
		c.flags |= fPollOut
	} else {
		c.flags &^= fPollOut
	}
	if err := e.ctl(unix.EPOLL_CTL_MOD, int(c.fd), ev, int32(c.slot), c.gen); err != nil {
		c.closeNow(err)
	}
}

// stopInput re-registers c for output only.
func (e *epollEngine) stopInput(c *Conn) {
	e.pollOut(c, false)
	e.pollOut(c, true)
}

func (e *epollEngine) closeSocket(c *Conn) {
	if c.io != nil {
		c.io.flight.free(c)
	}
	unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	unix.Close(int(c.fd))
	c.retire()
}
