package uring

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// register is io_uring_register(2) on the ring's descriptor.
func (r *Ring) register(op uintptr, arg unsafe.Pointer, n uintptr) (int, error) {
	if r.fake != nil {
		return 0, nil // a fake ring takes every registration
	}
	ret, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), n, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(ret), nil
}

// Probe reports which opcodes the kernel supports (IORING_REGISTER_PROBE,
// 5.6).
type Probe struct {
	supported [probeOps]bool
}

// Supports reports whether op is supported.
func (p *Probe) Supports(op uint8) bool { return p.supported[op] }

// Probe asks the kernel which opcodes it supports.
func (r *Ring) Probe() (*Probe, error) {
	var raw probe
	if _, err := r.register(registerProbe, unsafe.Pointer(&raw), probeOps); err != nil {
		return nil, os.NewSyscallError("io_uring_register PROBE", err)
	}
	p := &Probe{}
	for i := range min(int(raw.opsLen), probeOps) {
		if o := raw.ops[i]; o.flags&opSupported != 0 {
			p.supported[o.op] = true
		}
	}
	return p, nil
}

// Enable starts a ring made with SetupRDisabled. With SetupSingleIssuer the
// calling thread becomes the only one that may submit (io_uring_setup(2):
// "the task that enables the ring"), so call it on the thread that will
// run the ring.
func (r *Ring) Enable() error {
	_, err := r.register(registerEnableRings, nil, 0)
	return os.NewSyscallError("io_uring_register ENABLE_RINGS", err)
}

// RegisterRingFD registers the ring's descriptor with the calling thread
// (IORING_REGISTER_RING_FDS, 5.18), so that Enter skips the descriptor
// lookup. The registration belongs to the thread: only that thread may
// use the Ring afterwards.
func (r *Ring) RegisterRingFD() error {
	if r.fake != nil {
		return nil
	}
	up := rsrcUpdate{offset: ^uint32(0), data: uint64(r.fd)} // offset -1: any free slot
	if _, err := r.register(registerRingFDs, unsafe.Pointer(&up), 1); err != nil {
		return os.NewSyscallError("io_uring_register RING_FDS", err)
	}
	r.enterFD, r.enterReg = int(up.offset), enterRegisteredRing
	return nil
}

// UnregisterRingFD undoes RegisterRingFD (on the same thread).
func (r *Ring) UnregisterRingFD() error {
	if r.enterReg == 0 || r.fake != nil {
		return nil
	}
	up := rsrcUpdate{offset: uint32(r.enterFD)}
	_, err := r.register(unregisterRingFDs, unsafe.Pointer(&up), 1)
	r.enterFD, r.enterReg = r.fd, 0
	return os.NewSyscallError("io_uring_register UNREGISTER_RING_FDS", err)
}
