package reactor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/cnuma"
	"github.com/hioload-ws/hioload-ws/internal/ring"
)

// maxIov is IOV_MAX on Linux: the most buffers one writev takes.
const maxIov = 1024

// loopPlat is the epoll loop's state.
type loopPlat struct {
	epfd      int
	efd       int // eventfd for wakeups
	lfd       int // listening socket, -1 once closed
	events    []unix.EpollEvent
	conns     []*Conn // indexed by fd
	iov       [maxIov]unix.Iovec
	niov      int
	acceptAt  int64 // accept paused (EMFILE) until this time; 0 = not paused
	acceptLog int64 // when the last accept failure was logged
	gen       uint32
}

func (p *loopPlat) setIov(b []byte) {
	v := &p.iov[p.niov]
	v.Base = &b[0]
	v.SetLen(len(b))
	p.niov++
}

func newLoop(e *Engine, idx int, spec LoopSpec) (*Loop, error) {
	l := &Loop{
		e: e, h: e.h, log: e.log, idx: idx, spec: spec,
		inbox:   ring.NewMPMC[Task](e.cfg.Ring),
		scratch: make([]byte, 16<<10),
	}
	p := &l.plat
	p.epfd, p.efd, p.lfd = -1, -1, -1
	var err error
	if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if p.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.release()
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err = l.epollCtl(unix.EPOLL_CTL_ADD, p.efd, unix.EPOLLIN, 0); err != nil {
		l.release()
		return nil, err
	}
	if p.lfd, err = listen(e, idx); err != nil {
		l.release()
		return nil, err
	}
	if err = l.epollCtl(unix.EPOLL_CTL_ADD, p.lfd, unix.EPOLLIN, 0); err != nil {
		l.release()
		return nil, err
	}
	p.events = make([]unix.EpollEvent, e.cfg.Batch)
	l.batch.Store(int32(e.cfg.Batch))
	if spec.Pool != nil {
		l.cache = spec.Pool.NewCache()
	}
	l.newReadBuffer()
	return l, nil
}

func (l *Loop) epollCtl(op, fd int, events uint32, gen uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(gen)}
	if err := unix.EpollCtl(l.plat.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// release closes the loop's descriptors; the loop must not be running.
func (l *Loop) release() {
	l.closed.Store(true)
	p := &l.plat
	for _, fd := range []*int{&p.lfd, &p.efd, &p.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (l *Loop) wake() error {
	var one = [8]byte{1}
	for {
		_, err := unix.Write(l.plat.efd, one[:])
		switch {
		case err == nil || errors.Is(err, unix.EAGAIN): // counter full: a wakeup is pending anyway
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return os.NewSyscallError("write eventfd", err)
		}
	}
}

// pin locks the goroutine to its thread, pins the thread to spec.CPU and
// names it reactor-N so ps -L and /proc/PID/task/*/comm can find it. The
// thread is never unlocked: when run returns the thread exits with it.
func (l *Loop) pin() {
	runtime.LockOSThread()
	l.tid.Store(int32(unix.Gettid()))
	name := []byte(fmt.Sprintf("reactor-%d\x00", l.idx))
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0); err != nil {
		l.log.Warn("reactor: name thread", "loop", l.idx, "err", err)
	}
	if l.spec.CPU < 0 {
		return
	}
	if err := cnuma.PinThread(l.spec.CPU); err != nil {
		l.log.Warn("reactor: pin thread", "loop", l.idx, "cpu", l.spec.CPU, "err", err)
	}
}

// rawRead is read(2) without the scheduler hand-off of syscall.Syscall: the
// socket is non-blocking, so the call never waits, and the loop owns its
// thread anyway. (epoll_wait, which does block, keeps the full Syscall.)
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

func (l *Loop) run() {
	l.pin()
	defer l.finish()
	p := &l.plat
	l.now = time.Now().UnixNano()
	nextTick := l.now + int64(tickInterval)
	for {
		timeout := -1
		if len(l.timed) > 0 || p.acceptAt != 0 {
			timeout = int(tickInterval / time.Millisecond)
		}
		if b := int(l.batch.Load()); b != len(p.events) {
			p.events = make([]unix.EpollEvent, b)
		}
		n, err := unix.EpollWait(p.epfd, p.events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.log.Error("reactor: epoll_wait", "loop", l.idx, "err", err)
			return
		}
		l.now = time.Now().UnixNano()
		l.stats.wakeups.Add(1)
		l.stats.events.Add(uint64(max(n, 0)))
		for i := 0; i < n; i++ {
			ev := &p.events[i]
			fd := int(ev.Fd)
			switch fd {
			case p.efd:
				l.onWake()
			case p.lfd:
				l.accept()
			default:
				l.onConnEvent(fd, uint32(ev.Pad), ev.Events)
			}
		}
		if l.now >= nextTick {
			nextTick = l.now + int64(tickInterval)
			l.sweep()
			l.resumeAccept()
		}
		if l.stopping && l.stats.conns.Load() == 0 {
			return
		}
	}
}

func (l *Loop) onWake() {
	var buf [8]byte
	unix.Read(l.plat.efd, buf[:])
	l.handleWake()
}

// beginShutdown stops accepting, reads what every connection has already
// sent (so it is handled, not lost), then hands each to OnShutdown.
func (l *Loop) beginShutdown() {
	l.stopping = true
	p := &l.plat
	if p.lfd >= 0 {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, p.lfd, nil)
		unix.Close(p.lfd)
		p.lfd = -1
	}
	for _, c := range p.conns {
		if c != nil {
			l.shutdownConn(c)
		}
	}
}

func (l *Loop) closeAll(err error) {
	for _, c := range l.plat.conns {
		if c != nil && c.flags&fClosed == 0 {
			c.closeNow(err)
		}
	}
}

func (l *Loop) finish() {
	l.closeAll(ErrShutdown)
	l.release()
	l.freeMemory()
	// Drop tasks nobody will run; their data is garbage once unreferenced.
	for {
		if _, ok := l.inbox.Pop(); !ok {
			break
		}
	}
}

func (l *Loop) accept() {
	p := &l.plat
	for i := 0; i < len(p.events); i++ {
		fd, _, err := unix.Accept4(p.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN):
				return
			case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
				continue
			case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
				// Out of descriptors or memory: stop polling the listener for a
				// while instead of spinning on a level-triggered event.
				if l.stats.acceptFails.Add(1); l.now-p.acceptLog >= int64(5*time.Second) {
					l.log.Warn("reactor: accept failing, pausing accepts", "loop", l.idx, "err", os.NewSyscallError("accept4", err),
						"pause", tickInterval, "failures", l.stats.acceptFails.Load())
					p.acceptLog = l.now // at most one line per 5 s while it lasts
				}
				unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, p.lfd, nil)
				p.acceptAt = l.now + int64(tickInterval)
				return
			default:
				l.stats.acceptFails.Add(1)
				l.log.Error("reactor: accept", "loop", l.idx, "err", os.NewSyscallError("accept4", err))
				return
			}
		}
		l.open(fd)
	}
}

func (l *Loop) resumeAccept() {
	p := &l.plat
	if p.acceptAt == 0 || l.now < p.acceptAt || p.lfd < 0 {
		return
	}
	p.acceptAt = 0
	if err := l.epollCtl(unix.EPOLL_CTL_ADD, p.lfd, unix.EPOLLIN, 0); err != nil {
		l.log.Error("reactor: resume accept", "loop", l.idx, "err", err)
	}
}

func (l *Loop) open(fd int) {
	p := &l.plat
	// Latency first: replies go out as soon as writev hands them over.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	p.gen++
	c := &Conn{loop: l, fd: fd, gen: p.gen}
	if err := l.epollCtl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLRDHUP, c.gen); err != nil {
		l.log.Error("reactor: register connection", "loop", l.idx, "err", err)
		unix.Close(fd)
		return
	}
	for fd >= len(p.conns) {
		p.conns = append(p.conns, make([]*Conn, max(64, len(p.conns)))...)
	}
	p.conns[fd] = c
	l.stats.conns.Add(1)
	l.stats.accepted.Add(1)
	l.h.OnOpen(c)
	c.Flush()
}

func (l *Loop) onConnEvent(fd int, gen uint32, events uint32) {
	p := &l.plat
	if fd >= len(p.conns) {
		return
	}
	c := p.conns[fd]
	if c == nil || c.gen != gen {
		return // stale: the fd was closed (and maybe reused) earlier in this batch
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

// read does one read on c and hands the bytes to the handler. It reports
// whether the read returned data (so a caller may read again).
func (l *Loop) read(c *Conn) bool {
	buf := l.rbuf
	into := buf[headroom:]
	var direct DirectReader
	if dr, ok := l.h.(DirectReader); ok && c.in.Len() == 0 && c.flags&fWriteShut == 0 {
		if t := dr.ReadTarget(c); len(t) > 0 {
			direct, into = dr, t // zero-copy: a large payload goes where it ends up
		}
	}
	var n int
	var err error
	for {
		n, err = rawRead(c.fd, into)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err != nil && errors.Is(err, unix.EAGAIN):
		return false
	case err != nil:
		c.closeNow(os.NewSyscallError("read", err))
		return false
	case n == 0:
		c.peerEOF()
		return false
	}
	if direct != nil {
		l.stats.readCalls.Add(1)
		l.stats.bytesIn.Add(uint64(n))
		direct.OnDirect(c, n)
		c.Flush()
		return c.flags&fClosed == 0
	}
	return l.handleRead(c, n)
}

// flush writes the loop's queued iovecs for c with one writev and queues the
// part the kernel did not take.
func (c *Conn) flush() {
	l := c.loop
	p := &l.plat
	niov := l.takePending()
	defer l.resetScratch()
	if niov == 0 || c.flags&fClosed != 0 {
		return
	}
	var n int
	for {
		r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(c.fd), uintptr(unsafe.Pointer(&p.iov[0])), uintptr(niov))
		if e == unix.EINTR {
			continue
		}
		if e != 0 && e != unix.EAGAIN {
			clear(p.iov[:niov])
			c.closeNow(os.NewSyscallError("writev", e))
			return
		}
		if e == 0 {
			n = int(r)
		}
		break
	}
	l.stats.writeCalls.Add(1)
	l.stats.bytesOut.Add(uint64(n))
	// Queue the unsent tail, in order.
	for i := 0; i < niov; i++ {
		v := &p.iov[i]
		ln := int(v.Len)
		switch {
		case n >= ln:
			n -= ln
		case c.flags&fClosed == 0:
			c.queue(unsafe.Slice(v.Base, ln)[n:]) // may close c (ErrNoMemory)
			n = 0
		}
		v.Base = nil // let the GC have the buffer
	}
	if c.flags&fClosed == 0 && c.outHead < c.out.Len() {
		c.pollOut(true)
	}
}

// drainOut writes queued output when the socket became writable.
func (c *Conn) drainOut() {
	l := c.loop
	for c.outHead < c.out.Len() {
		n, err := unix.Write(c.fd, c.out.Bytes()[c.outHead:])
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
		l.stats.writeCalls.Add(1)
		l.stats.bytesOut.Add(uint64(n))
		c.outHead += n
	}
	c.out.Free(l) // drained: give the queue's memory back
	c.outHead = 0
	c.pollOut(false)
	if c.flags&(fClosing|fPeerEOF) != 0 {
		c.shutdownWrite()
	}
}

func (c *Conn) pollOut(on bool) {
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
	if err := c.loop.epollCtl(unix.EPOLL_CTL_MOD, c.fd, ev, c.gen); err != nil {
		c.closeNow(err)
	}
}

// peerEOF handles the peer's FIN: close now, unless replies are still
// queued, in which case they are sent first (a half-closed peer may still
// read).
func (c *Conn) peerEOF() {
	if c.outHead >= c.out.Len() || c.flags&fWriteShut != 0 {
		c.closeNow(ErrPeerClosed)
		return
	}
	c.flags |= fPeerEOF
	c.pollOut(false)
	c.pollOut(true) // re-register without EPOLLIN: EOF stays readable forever
	c.SetDeadline(time.Unix(0, c.loop.now).Add(c.loop.e.cfg.LingerTimeout))
}

// shutdownWrite sends FIN after the last queued byte and waits (bounded by
// the linger timeout) for the peer to close.
func (c *Conn) shutdownWrite() {
	if c.flags&fPeerEOF != 0 {
		c.closeNow(ErrPeerClosed)
		return
	}
	c.flags = c.flags&^fClosing | fWriteShut
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		c.closeNow(os.NewSyscallError("shutdown", err))
		return
	}
	c.SetDeadline(time.Unix(0, c.loop.now).Add(c.loop.e.cfg.LingerTimeout))
}

func (c *Conn) closeNow(err error) {
	if c.flags&fClosed != 0 {
		return
	}
	l := c.loop
	p := &l.plat
	l.dropPending(c)
	c.flags |= fClosed
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	if c.fd < len(p.conns) && p.conns[c.fd] == c {
		p.conns[c.fd] = nil
	}
	c.in.Free(l)
	c.out.Free(l)
	c.outHead = 0
	l.stats.conns.Add(-1)
	l.h.OnClose(c, err)
}

// progressed reports whether the peer took any of c's output since the last
// call: the kernel's unsent bytes (SIOCOUTQ) plus our queue shrank, or our
// queue moved. A slow reader keeps moving; a peer that stopped does not.
func (c *Conn) progressed() bool {
	outq, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ)
	if err != nil {
		return false
	}
	pending := outq + c.out.Len() - c.outHead
	moved := pending < c.sent
	c.sent = pending
	return moved
}

// inFlight is 0: on Linux the write queue is all there is (Windows counts
// the overlapped send it has moved out of the queue).
func (c *Conn) inFlight() int { return 0 }

func (c *Conn) remoteAddr() net.Addr {
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

// FileLimit is the process's soft limit on open descriptors (RLIMIT_NOFILE),
// or -1 if it cannot be read.
func FileLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return -1
	}
	return int(r.Cur)
}
