package uring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SQE preparation, as liburing's io_uring_prep_* helpers do it (the man
// pages of the same names give the semantics). Each starts from the zeroed
// SQE GetSQE returns and sets only what the operation reads.

func addr(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

// PrepNop is a no-op: it completes with Res 0.
func (s *SQE) PrepNop(userData uint64) {
	s.Opcode, s.Fd, s.UserData = OpNop, -1, userData
}

// PrepAcceptMultishot accepts connections on the listening socket fd until
// cancelled or failed, one CQE per connection (Res: the new descriptor,
// made with flags such as SOCK_NONBLOCK|SOCK_CLOEXEC); CQEFMore is set
// while it stays armed. io_uring_prep_multishot_accept(3), 5.19.
func (s *SQE) PrepAcceptMultishot(fd int, flags uint32, userData uint64) {
	s.Opcode, s.Fd, s.OpFlags, s.UserData = OpAccept, int32(fd), flags, userData
	s.IOPrio = acceptMultishot
}

// PrepRecvMultishot receives from the socket fd into buffers of group,
// one CQE per receive (Res: bytes, 0 at EOF, or -errno), until EOF, an
// error, ENOBUFS (the group ran dry) or cancellation; CQEFMore is set
// while it stays armed. max bounds the bytes of one CQE (0: no bound).
// limit ends the receive once it has taken that many bytes (0: never), its
// last CQE carrying bytes and no CQEFMore (IORING_RECV_MSHOT_LIM, Linux
// 6.17; an older kernel fails the receive with EINVAL, as it fails a max).
// io_uring_prep_recv_multishot(3), 6.0.
func (s *SQE) PrepRecvMultishot(fd int, group uint16, max, limit uint32, userData uint64) {
	s.Opcode, s.Fd, s.Len, s.UserData = OpRecv, int32(fd), max, userData
	s.IOPrio = recvMultishot
	s.Flags |= SQEBufferSelect
	s.BufGroup = group
	s.FileIndex = limit // optlen
}

// PrepRecv is one receive of up to len(p) bytes into p (p must stay valid
// until the completion).
func (s *SQE) PrepRecv(fd int, p []byte, flags uint32, userData uint64) {
	s.Opcode, s.Fd, s.UserData = OpRecv, int32(fd), userData
	s.Addr, s.Len, s.OpFlags = addr(unsafe.Pointer(unsafe.SliceData(p))), uint32(len(p)), flags
}

// PrepSendmsg sends the iovecs msg names (msg and what it points to must
// stay valid until submission; the bytes until the completion). flags are
// send(2) flags: with unix.MSG_DONTWAIT a socket that would block completes
// at once with -EAGAIN, or with a short count, instead of waiting for room
// (the kernel marks such a request REQ_F_NOWAIT). io_uring_prep_sendmsg(3).
func (s *SQE) PrepSendmsg(fd int, msg *unix.Msghdr, flags uint32, userData uint64) {
	s.Opcode, s.Fd, s.UserData = OpSendmsg, int32(fd), userData
	s.Addr, s.Len, s.OpFlags = addr(unsafe.Pointer(msg)), 1, flags
}

// PrepSend sends p (valid until the completion).
func (s *SQE) PrepSend(fd int, p []byte, flags uint32, userData uint64) {
	s.Opcode, s.Fd, s.UserData = OpSend, int32(fd), userData
	s.Addr, s.Len, s.OpFlags = addr(unsafe.Pointer(unsafe.SliceData(p))), uint32(len(p)), flags
}

// PrepSendZC sends p without copying it into the kernel (6.0): the send
// completes with CQEFMore set, and a second CQE with CQEFNotif says when
// the kernel no longer reads p; only then may p be reused.
// io_uring_prep_send_zc(3).
func (s *SQE) PrepSendZC(fd int, p []byte, flags uint32, zcFlags uint16, userData uint64) {
	s.PrepSend(fd, p, flags, userData)
	s.Opcode, s.IOPrio = OpSendZC, zcFlags
}

// PrepSendmsgZC is PrepSendmsg without copying the bytes (6.1), with the
// notification PrepSendZC describes.
func (s *SQE) PrepSendmsgZC(fd int, msg *unix.Msghdr, flags uint32, zcFlags uint16, userData uint64) {
	s.PrepSendmsg(fd, msg, flags, userData)
	s.Opcode, s.IOPrio = OpSendmsgZC, zcFlags
}

// PrepRead reads up to len(p) bytes from fd into p (valid until the
// completion), at the current position.
func (s *SQE) PrepRead(fd int, p []byte, userData uint64) {
	s.Opcode, s.Fd, s.UserData = OpRead, int32(fd), userData
	s.Addr, s.Len, s.Off = addr(unsafe.Pointer(unsafe.SliceData(p))), uint32(len(p)), ^uint64(0)
}

// PrepPoll reports events (poll(2) bits) on fd once, with one CQE, when
// one of them is true (io_uring_prep_poll_add(3)).
func (s *SQE) PrepPoll(fd int, events uint32, userData uint64) {
	s.Opcode, s.Fd, s.OpFlags, s.UserData = OpPollAdd, int32(fd), events, userData
}

// PrepPollMultishot reports events (poll(2) bits) on fd, one CQE each time
// they become true, until cancelled (5.13).
func (s *SQE) PrepPollMultishot(fd int, events uint32, userData uint64) {
	s.Opcode, s.Fd, s.OpFlags, s.UserData = OpPollAdd, int32(fd), events, userData
	s.Len = pollAddMulti
}

// PrepCancel cancels the request(s) whose user data is target (flags may
// add CancelAll). Res is 0 (or the count with CancelAll) when found,
// -ENOENT when not, -EALREADY when it was running. io_uring_prep_cancel(3).
func (s *SQE) PrepCancel(target uint64, flags uint32, userData uint64) {
	s.Opcode, s.Fd, s.Addr, s.OpFlags, s.UserData = OpAsyncCancel, -1, target, flags, userData
}

// PrepCancelFD cancels the requests on descriptor fd (CancelFD; add
// CancelAll for every one of them), 5.19.
func (s *SQE) PrepCancelFD(fd int, flags uint32, userData uint64) {
	s.Opcode, s.Fd, s.OpFlags, s.UserData = OpAsyncCancel, int32(fd), flags|CancelFD, userData
}

// PrepClose closes fd (5.6).
func (s *SQE) PrepClose(fd int, userData uint64) {
	s.Opcode, s.Fd, s.UserData = OpClose, int32(fd), userData
}

// PrepShutdown is shutdown(2) of fd with how (unix.SHUT_WR, ...), 5.11.
func (s *SQE) PrepShutdown(fd int, how int, userData uint64) {
	s.Opcode, s.Fd, s.Len, s.UserData = OpShutdown, int32(fd), uint32(how), userData
}
