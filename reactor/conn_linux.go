//go:build !noreactor

package reactor

import (
	"errors"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connPlat holds the part of the write queue being sent (nil until the
// connection first queues output): epoll needs only the fd and the flags.
type connPlat struct {
	q *sendQueue
}

// sendQueue is the front of the write queue: the bytes drainOut is
// writing, moved out of Conn.out when it had drained the previous ones, so
// that new output is appended to a fresh buffer and queued bytes are never
// moved to make room (as on Windows, where they are the overlapped send's).
type sendQueue struct {
	b    Buf
	head int // b[head:] is unsent
}

// recv is one read(2).
func (c *Conn) recv(p []byte) (int, error) {
	n, e := rawIO(unix.SYS_READ, c.fd, unsafe.Pointer(unsafe.SliceData(p)), len(p))
	switch e {
	case 0:
		return n, nil
	case unix.EAGAIN:
		return 0, errWouldBlock
	}
	return 0, os.NewSyscallError("read", e)
}

// send is one writev(2) of bufs.
func (c *Conn) send(bufs [][]byte) (int, error) {
	iov := c.loop.p.iov[:len(bufs)]
	for i, b := range bufs {
		iov[i].Base = &b[0]
		iov[i].SetLen(len(b))
	}
	n, e := rawIO(unix.SYS_WRITEV, c.fd, unsafe.Pointer(&iov[0]), len(iov))
	clear(iov)
	switch e {
	case 0:
		return n, nil
	case unix.EAGAIN:
		return 0, nil
	}
	return 0, os.NewSyscallError("writev", e)
}

// rawIO makes a read or writev call through RawSyscall, without the
// scheduler hand-off of syscall.Syscall: the socket is non-blocking, so the
// call never waits, and the loop owns its thread anyway. It retries EINTR.
func rawIO(trap uintptr, fd int, p unsafe.Pointer, n int) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(n))
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// startOutput moves the write queue to the front if that is empty and
// asks epoll to report when the socket takes more.
func (c *Conn) startOutput() {
	c.takeOut()
	c.pollOut(true)
}

// inFlight is what the front holds unsent.
func (c *Conn) inFlight() int {
	if q := c.p.q; q != nil {
		return q.b.Len() - q.head
	}
	return 0
}

// takeOut makes sure the front holds unsent bytes if any are queued: once
// it is drained, its memory goes back and Conn.out becomes the front. It
// reports false when nothing is queued.
func (c *Conn) takeOut() bool {
	q := c.p.q
	if q == nil {
		q = new(sendQueue)
		c.p.q = q
	}
	if q.head < q.b.Len() {
		return true
	}
	q.b.Free(c)
	q.head = 0
	if c.out.Len() <= c.outHead {
		return false
	}
	q.b, q.head = c.out, c.outHead
	c.out, c.outHead = Buf{}, 0
	return true
}

// drainOut writes queued output when the socket became writable: at most
// writeSlice bytes per event, so that a long queue is sent in slices while
// the loop's other connections take their turns (epoll reports the socket
// writable again next turn).
func (c *Conn) drainOut() {
	budget := writeSlice
	for budget > 0 && c.takeOut() {
		q := c.p.q
		p := q.b.Bytes()[q.head:]
		n, err := unix.Write(c.fd, p[:min(len(p), budget)])
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
		c.wrote(n)
		q.head += n
		budget -= n
	}
	if c.Queued() > 0 {
		return // the budget is spent: more next turn
	}
	c.pollOut(false)
	c.outputDone()
}

// pollOut registers (or unregisters) interest in writability; after the
// peer's EOF, input is no longer watched (EOF stays readable forever).
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

// stopInput re-registers c for output only.
func (c *Conn) stopInput() {
	c.pollOut(false)
	c.pollOut(true)
}

func (c *Conn) shutWrite() error {
	return os.NewSyscallError("shutdown", unix.Shutdown(c.fd, unix.SHUT_WR))
}

func (c *Conn) closeSocket() {
	if q := c.p.q; q != nil {
		q.b.Free(c)
		c.p.q = nil
	}
	l := c.loop
	unix.EpollCtl(l.p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	if c.fd < len(l.conns) && l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
}

// unsent asks the kernel how many bytes of its send queue the peer has not
// acknowledged (SIOCOUTQ).
func (c *Conn) unsent() (int, bool) {
	n, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ)
	return n, err == nil
}

func (c *Conn) remoteAddr() net.Addr {
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}
