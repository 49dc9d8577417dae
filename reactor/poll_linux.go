//go:build !noreactor

package reactor

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The epoll poller. Each loop owns an epoll instance, an eventfd for
// wakeups and its own SO_REUSEPORT listening socket (accept_linux.go), so
// the kernel spreads connections across loops with no hand-off between
// threads. Connections are registered level-triggered for input, and for
// output only while their write queue holds bytes; the epoll data holds the
// fd and the connection's generation, so that events for a closed (and
// reused) fd are dropped.

// hasPoller says whether this build has a poller.
const hasPoller = true

type poller struct {
	epfd   int
	efd    int // eventfd for wakeups
	lfd    int // listening socket, -1 once closed
	events []unix.EpollEvent
	iov    [maxIov]unix.Iovec // a gather write's vector
	gen    uint32             // the last connection's generation
}

func (l *Loop) openPoller() (err error) {
	p := &l.p
	p.epfd, p.efd, p.lfd = -1, -1, -1
	defer func() {
		if err != nil {
			l.closePoller()
		}
	}()
	if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if p.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	if err = l.epollCtl(unix.EPOLL_CTL_ADD, p.efd, unix.EPOLLIN, 0); err != nil {
		return err
	}
	if p.lfd, err = listen(l.e, l.idx); err != nil {
		return err
	}
	return l.epollCtl(unix.EPOLL_CTL_ADD, p.lfd, unix.EPOLLIN, 0)
}

func (l *Loop) epollCtl(op, fd int, events uint32, gen uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(gen)}
	if err := unix.EpollCtl(l.p.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (l *Loop) closePoller() {
	p := &l.p
	for _, fd := range []*int{&p.lfd, &p.efd, &p.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// settle has nothing to wait for: epoll holds no buffers of ours.
func (l *Loop) settle() {}

func (l *Loop) poll(timeout time.Duration) (int, error) {
	p := &l.p
	if b := int(l.batch.Load()); b != len(p.events) {
		p.events = make([]unix.EpollEvent, b)
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	// epoll_wait blocks, so it goes through the scheduler (syscall.Syscall)
	// and not RawSyscall as the non-blocking calls do.
	n, err := unix.EpollWait(p.epfd, p.events, ms)
	l.now = time.Now().UnixNano()
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return 0, nil
		}
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	for i := range n {
		ev := &p.events[i]
		switch fd := int(ev.Fd); fd {
		case p.efd:
			var buf [8]byte
			unix.Read(p.efd, buf[:])
			l.handleWake()
		case p.lfd:
			l.accept()
		default:
			l.connEvent(fd, uint32(ev.Pad), ev.Events)
		}
	}
	return n, nil
}

func (l *Loop) wakePoller() error {
	one := [8]byte{1}
	for {
		_, err := unix.Write(l.p.efd, one[:])
		switch {
		case err == nil || errors.Is(err, unix.EAGAIN): // counter full: a wakeup is pending anyway
			return nil
		case !errors.Is(err, unix.EINTR):
			return os.NewSyscallError("write eventfd", err)
		}
	}
}

// connEvent hands an event to its connection, unless it is stale: the fd
// was closed (and maybe reused) earlier in this batch.
func (l *Loop) connEvent(fd int, gen uint32, events uint32) {
	if fd >= len(l.conns) {
		return
	}
	c := l.conns[fd]
	if c == nil || c.gen != gen {
		return
	}
	if events&unix.EPOLLOUT != 0 {
		c.drainOut()
		if c.flags&fClosed != 0 {
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.flags&fPeerEOF == 0 {
		l.read(c)
	}
}

func nameThread(name string) error {
	b := append([]byte(name), 0)
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

func threadID() int { return unix.Gettid() }

func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

// FileLimit is the process's soft limit on open descriptors (RLIMIT_NOFILE),
// or -1 if it cannot be read.
func FileLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return -1
	}
	return int(r.Cur)
}
