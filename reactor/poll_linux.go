//go:build !noreactor

package reactor

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux has two engines behind the platform contract: epoll
// (epoll_linux.go) and io_uring (uring_linux.go and the uring_*_linux.go
// files), chosen per Engine by Config.IOEngine. The poller holds the
// chosen one as a linuxEngine, a small interface, and every hook the
// portable code calls dispatches through it once (poll_linux.go,
// conn_linux.go): one indirect call per hook, no switch in each. What
// both engines share stays here and in accept_linux.go: the listening
// socket, the wakeup eventfd, the wait (see wait below), thread names.

// hasPoller says whether this build has a poller.
const hasPoller = true

type poller struct {
	eng linuxEngine
	lfd int // the loop's listening socket, -1 once closed
	efd int // eventfd for wakeups
	gen uint32
	iov [maxIov]unix.Iovec // a synchronous gather write's vector
	sa  rawAddr            // the address accept4 or getpeername just wrote
	ti  unix.TCPInfo       // the last TCP_INFO asked (Conn.acked)
}

// linuxEngine is what each Linux engine implements: the hooks of the
// platform contract (loop.go) that differ between epoll and io_uring.
type linuxEngine interface {
	open(l *Loop) error
	poll(l *Loop, timeout time.Duration) (int, error)
	register(c *Conn) error // a new connection: start watching its input
	pauseAccepting(l *Loop)
	resumeAccepting(l *Loop)
	stopAccepting(l *Loop)
	settle(l *Loop)
	close(l *Loop)
	send(c *Conn, bufs [][]byte) (int, error)
	startOutput(c *Conn)
	stopInput(c *Conn)
	closeSocket(c *Conn)
}

// slotLimit bounds a loop's connection table (the epoll data and the
// io_uring user data carry 32 bits of slot).
const slotLimit = 1 << 31

// How the engines wait (Config.Wait). Through the scheduler
// (syscall.Syscall6) the loop's P is free for other goroutines while the
// thread sleeps, at the cost of a hand-off per wait: sysmon retakes the P
// after 20 µs in the system call and starts or wakes another thread for
// it, and the loop needs a P again when it wakes (runtime.exitsyscall);
// the issue that asked for this measured 12,300 context switches a second
// at 20,000 messages a second, 30 % of the server's CPU on threads other
// than the loop's. A raw wait (syscall.RawSyscall6) keeps the P: no
// scheduler work per wakeup at all. A signal ends it early (EINTR): the Go
// runtime's preemption (sysmon preempts a goroutine that has run 10 ms,
// and a raw wait counts as running) and the garbage collector's
// stop-the-world both signal the thread, so neither waits for the next
// event.

func (l *Loop) openPoller() (err error) {
	p := &l.p
	p.lfd, p.efd = -1, -1
	defer func() {
		if err != nil {
			l.closePoller()
		}
	}()
	if l.e.io == IOURing {
		p.eng = &uringEngine{}
	} else {
		p.eng = &epollEngine{epfd: -1}
	}
	if p.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	if p.lfd, err = listen(l.e, l.idx); err != nil {
		return err
	}
	return p.eng.open(l)
}

func (l *Loop) closePoller() {
	p := &l.p
	if p.eng != nil {
		p.eng.close(l)
	}
	for _, fd := range []*int{&p.lfd, &p.efd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (l *Loop) poll(timeout time.Duration) (int, error) { return l.p.eng.poll(l, timeout) }
func (l *Loop) pauseAccepting()                         { l.p.eng.pauseAccepting(l) }
func (l *Loop) resumeAccepting()                        { l.p.eng.resumeAccepting(l) }
func (l *Loop) settle()                                 { l.p.eng.settle(l) }

// stopAccepting closes the listener for good; before the loop ran (an
// engine that never started) there is nothing in flight on it.
func (l *Loop) stopAccepting() {
	if l.p.lfd >= 0 && l.p.eng != nil {
		l.p.eng.stopAccepting(l)
	}
}

// wakePoller writes the eventfd; both engines watch it (epoll for input, io_uring with a read that completes).
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
