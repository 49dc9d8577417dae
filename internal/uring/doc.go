// Package uring is a small pure-Go binding of Linux io_uring: the system
// calls (io_uring_setup, io_uring_enter, io_uring_register), the shared
// submission and completion rings mapped into our memory, SQE preparation
// for the operations the reactor uses, the opcode probe and provided-buffer
// rings. It has no cgo: the ring is on the hot path.
//
// It follows the kernel's UAPI header (include/uapi/linux/io_uring.h, as
// of Linux 6.18) and liburing's man pages, which document the semantics the
// comments here rely on: io_uring_setup(2), io_uring_enter(2),
// io_uring_register(2), io_uring_register_buf_ring(3),
// io_uring_prep_multishot_accept(3), io_uring_prep_recv_multishot(3),
// io_uring_prep_sendmsg(3), io_uring_prep_send_zc(3),
// io_uring_prep_cancel(3).
//
// A Ring belongs to one goroutine locked to its OS thread (the reactor's
// loop): the rings are not synchronised for concurrent submitters, and with
// SetupSingleIssuer the kernel itself refuses submissions from another
// thread. Memory the kernel keeps a reference to (the rings, SQE addresses,
// provided buffers) is memory mapped outside the Go heap or memory the
// caller keeps alive until the completion says the kernel is done with it.
//
// Only Linux has io_uring: on other systems the package is empty.
package uring
