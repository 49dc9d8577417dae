//go:build !noreactor

package reactor

import (
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockFD is a socket descriptor as a Conn keeps it: 32 bits, as the
// kernel's are.
type sockFD = int32

// connPlat is what the io_uring engine keeps per connection (epoll needs
// only the fd and the flags): 4 bytes.
type connPlat struct {
	ops   uint8  // io_uring operations in flight (receive, send, drain, cancel, close)
	state uint8  // io_uring: uring* bits
	rec   uint16 // io_uring: this turn's send record + 1; 0 when none
}

// The hooks that differ between the Linux engines go through the loop's
// engine (poll_linux.go); the rest is the same system call for both.

func (c *Conn) send(bufs [][]byte) (int, error) { return c.loop.p.eng.send(c, bufs) }
func (c *Conn) startOutput()                    { c.loop.p.eng.startOutput(c) }
func (c *Conn) stopInput()                      { c.loop.p.eng.stopInput(c) }
func (c *Conn) closeSocket()                    { c.loop.p.eng.closeSocket(c) }

// sending runs several times per message (Conn.outputPending): it reads
// connPlat, which only the io_uring engine sets, instead of dispatching.
// It reports whether an io_uring send of c holds bytes the kernel has not
// answered.
func (c *Conn) sending() bool { return c.p.state&uringSending != 0 }

// recv is one read(2); the io_uring engine uses it too, for the reads it
// makes itself (Loop.read: a shutdown's last reads, a DirectReader's).
func (c *Conn) recv(p []byte) (int, error) {
	n, e := rawIO(unix.SYS_READ, int(c.fd), unsafe.Pointer(unsafe.SliceData(p)), len(p))
	switch e {
	case 0:
		return n, nil
	case unix.EAGAIN:
		return 0, errWouldBlock
	}
	return 0, os.NewSyscallError("read", e)
}

// writev is one writev(2) of bufs: the epoll engine's send, and the io_uring
// engine's when it cannot queue one.
func (c *Conn) writev(bufs [][]byte) (int, error) {
	iov := c.loop.p.iov[:len(bufs)]
	for i, b := range bufs {
		iov[i].Base = &b[0]
		iov[i].SetLen(len(b))
	}
	n, e := rawIO(unix.SYS_WRITEV, int(c.fd), unsafe.Pointer(&iov[0]), len(iov))
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

func (c *Conn) shutWrite() error {
	return os.NewSyscallError("shutdown", unix.Shutdown(int(c.fd), unix.SHUT_WR))
}

// unsent asks the kernel how many bytes of its send queue the peer has not
// acknowledged (SIOCOUTQ); what an io_uring send still holds is in
// inFlight (counted in Queued).
func (c *Conn) unsent() (int, bool) {
	n, err := unix.IoctlGetInt(int(c.fd), unix.SIOCOUTQ)
	return n, err == nil
}

func (c *Conn) remoteAddr() net.Addr {
	var r rawAddr // not the loop's: RemoteAddr may be called from elsewhere
	if ap := r.peer(int(c.fd)); ap.IsValid() {
		return net.TCPAddrFromAddrPort(ap)
	}
	return nil
}

// acked asks the kernel how many bytes the peer has acknowledged since the
// connection opened (TCP_INFO's tcpi_bytes_acked, Linux 4.1), into the
// loop's buffer (x/sys's GetsockoptTCPInfo allocates one per call); false
// when the kernel's answer is too short to hold it.
func (c *Conn) acked() (uint64, bool) {
	ti := &c.loop.p.ti
	n := uint32(unsafe.Sizeof(*ti))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(c.fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(ti)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 || uintptr(n) < unsafe.Offsetof(ti.Bytes_acked)+unsafe.Sizeof(ti.Bytes_acked) {
		return 0, false
	}
	return ti.Bytes_acked, true
}
