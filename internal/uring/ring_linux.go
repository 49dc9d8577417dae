package uring

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is one io_uring instance with its submission queue (SQ) and
// completion queue (CQ) mapped into our memory. The zero Ring is not
// usable; make one with New. Not safe for concurrent use.
type Ring struct {
	fd       int
	enterFD  int    // fd, or the registered index once RegisterRingFD ran
	enterReg uint32 // enterRegisteredRing once registered
	flags    uint32 // the setup flags the kernel accepted
	features uint32

	// Submission queue. sqTail is our tail: SQEs up to it are prepared;
	// *kSQTail is what the kernel sees (published by Submit).
	kSQHead  *uint32
	kSQTail  *uint32
	kSQFlags *uint32
	sqArray  []uint32 // nil with SetupNoSQArray
	sqes     []SQE
	sqMask   uint32
	sqTail   uint32

	// Completion queue.
	kCQHead   *uint32
	kCQTail   *uint32
	kOverflow *uint32
	cqes      []CQE
	cqMask    uint32

	ringMem []byte // SQ and CQ rings (IORING_FEAT_SINGLE_MMAP)
	sqeMem  []byte

	// The wait's timeout, where the kernel reads it: in the Ring (heap
	// memory does not move) rather than on a stack that may.
	ts  unix.Timespec
	arg getEventsArg

	fake *fakeKernel // NewFake: no kernel behind the ring
}

var (
	errNoSingleMmap = errors.New("uring: kernel lacks IORING_FEAT_SINGLE_MMAP (5.4)")
	errNoExtArg     = errors.New("uring: kernel lacks IORING_FEAT_EXT_ARG (5.11)")
	errNoNoDrop     = errors.New("uring: kernel lacks IORING_FEAT_NODROP (5.5)")
)

// New sets up a ring of at least entries SQEs (a power of two, at most
// 32768) with p's flags and sizes (p may be nil), and maps it. The caller
// closes it.
func New(entries uint32, p *Params) (*Ring, error) {
	var params Params
	if p != nil {
		params = *p
	}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&params)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{fd: int(fd), enterFD: int(fd), flags: params.Flags, features: params.Features}
	if err := r.mmap(&params); err != nil {
		r.Close()
		return nil, err
	}
	if p != nil {
		*p = params
	}
	return r, nil
}

// mmap maps the rings as io_uring_setup(2) describes: one mapping for both
// rings (IORING_FEAT_SINGLE_MMAP, every kernel since 5.4) and one for the
// SQE array.
func (r *Ring) mmap(p *Params) error {
	switch {
	case p.Features&featSingleMmap == 0:
		return errNoSingleMmap
	case p.Features&featNoDrop == 0:
		return errNoNoDrop
	case p.Features&featExtArg == 0:
		return errNoExtArg
	}
	sqSize := uintptr(p.sqOff.Array) + uintptr(p.SQEntries)*4
	cqSize := uintptr(p.cqOff.CQEs) + uintptr(p.CQEntries)*unsafe.Sizeof(CQE{})
	size := max(sqSize, cqSize)
	mem, err := unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap io_uring rings", err)
	}
	r.ringMem = mem
	sqeSize := int(p.SQEntries) * int(unsafe.Sizeof(SQE{}))
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return os.NewSyscallError("mmap io_uring sqes", err)
	}
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.kSQHead, r.kSQTail, r.kSQFlags = at(p.sqOff.Head), at(p.sqOff.Tail), at(p.sqOff.Flags)
	r.sqMask = *at(p.sqOff.RingMask)
	if p.Flags&SetupNoSQArray == 0 {
		r.sqArray = unsafe.Slice(at(p.sqOff.Array), p.SQEntries)
		for i := range r.sqArray {
			r.sqArray[i] = uint32(i) // SQE i sits at ring position i for good
		}
	}
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), p.SQEntries)
	r.sqTail = *r.kSQTail
	r.kCQHead, r.kCQTail, r.kOverflow = at(p.cqOff.Head), at(p.cqOff.Tail), at(p.cqOff.Overflow)
	r.cqMask = *at(p.cqOff.RingMask)
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&mem[p.cqOff.CQEs])), p.CQEntries)
	return nil
}

// Close unmaps the rings and closes the ring's descriptor. The kernel then
// cancels what is still in flight (asynchronously: memory an operation
// may still write must outlive the operation, not the Ring).
func (r *Ring) Close() error {
	if r.fake != nil {
		r.sqes, r.cqes = nil, nil
		return nil
	}
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.ringMem != nil {
		unix.Munmap(r.ringMem)
		r.ringMem = nil
	}
	r.sqes, r.cqes, r.sqArray = nil, nil, nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return os.NewSyscallError("close io_uring", err)
}

// FD is the ring's file descriptor (-1 once closed).
func (r *Ring) FD() int { return r.fd }

// Flags are the setup flags the ring was made with.
func (r *Ring) Flags() uint32 { return r.flags }

// SQEntries and CQEntries are the ring sizes the kernel chose.
func (r *Ring) SQEntries() int { return len(r.sqes) }

// CQEntries is the completion ring's size.
func (r *Ring) CQEntries() int { return len(r.cqes) }

// GetSQE returns the next free SQE, zeroed, or nil when the SQ is full (the
// caller submits to make room). It is queued from this call on: prepare it
// before the next Submit.
func (r *Ring) GetSQE() *SQE {
	if r.sqTail-atomic.LoadUint32(r.kSQHead) > r.sqMask {
		return nil
	}
	sqe := &r.sqes[r.sqTail&r.sqMask]
	*sqe = SQE{}
	r.sqTail++
	return sqe
}

// Pending is the number of SQEs prepared and not yet taken by the kernel.
func (r *Ring) Pending() int { return int(r.sqTail - atomic.LoadUint32(r.kSQHead)) }

// Unsubmitted returns the SQEs prepared since the last Submit, oldest
// first, for a caller that must change one before the kernel reads it
// (turn a send of a connection just closed into a no-op, say).
func (r *Ring) Unsubmitted(yield func(*SQE) bool) {
	for i := atomic.LoadUint32(r.kSQTail); i != r.sqTail; i++ {
		if !yield(&r.sqes[i&r.sqMask]) {
			return
		}
	}
}

// flushSQ publishes the prepared SQEs to the kernel and returns how many
// are waiting for it.
func (r *Ring) flushSQ() uint32 {
	atomic.StoreUint32(r.kSQTail, r.sqTail) // release: the SQEs are written
	return r.sqTail - atomic.LoadUint32(r.kSQHead)
}

// Submit hands the prepared SQEs to the kernel without waiting for
// completions, and returns how many it took. It never blocks: a raw system
// call, without a scheduler hand-off.
func (r *Ring) Submit() (int, error) {
	n := r.flushSQ()
	flags := r.enterReg
	if r.needEnter() {
		flags |= enterGetEvents // flush overflowed CQEs, run deferred work
	} else if n == 0 {
		return 0, nil
	}
	return r.enter(n, 0, flags, nil, 0, RawWait)
}

// needEnter reports whether completions wait in the kernel: overflowed
// CQEs, or deferred task work (IORING_SQ_TASKRUN).
func (r *Ring) needEnter() bool {
	return atomic.LoadUint32(r.kSQFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// Wait says how a blocking Enter waits.
type Wait uint8

const (
	// SyscallWait goes through the Go scheduler (syscall.Syscall6): the
	// goroutine's P is handed off while the thread sleeps in the kernel.
	SyscallWait Wait = iota
	// RawWait keeps the P (syscall.RawSyscall6): no scheduler work per
	// wait, but the P is not available to other goroutines meanwhile,
	// and only a signal (preemption, GC) interrupts the wait early.
	RawWait
)

// SubmitAndWait submits the prepared SQEs and waits until at least wait
// completions are in the CQ or timeout passes (negative: no limit), with one
// io_uring_enter(2). It returns the number of SQEs submitted; a wait cut
// short by the timeout or by a signal is not an error (look at the CQ).
func (r *Ring) SubmitAndWait(wait uint32, timeout time.Duration, how Wait) (int, error) {
	return r.SubmitAndWaitBatch(wait, 0, timeout, how)
}

// SubmitAndWaitBatch is SubmitAndWait with a budget for the batch: it
// waits up to minWait for wait completions and then returns with whatever
// came, if any; when none came it goes on waiting (up to timeout) and
// returns at the first (io_uring_submit_and_wait_min_timeout(3),
// IORING_FEAT_MIN_TIMEOUT, Linux 6.12). A loop that would wake for each
// event can so take several per wakeup, each waiting at most minWait
// longer. Without the feature (or with minWait 0) it is SubmitAndWait
// with wait 1.
func (r *Ring) SubmitAndWaitBatch(wait uint32, minWait, timeout time.Duration, how Wait) (int, error) {
	n := r.flushSQ()
	flags := r.enterReg | enterGetEvents
	var minUs uint32
	if minWait > 0 && wait > 1 && r.features&featMinTimeout != 0 {
		minUs = uint32(max(minWait/time.Microsecond, 1))
		if timeout < 0 {
			// The kernel goes on waiting after the budget only under a
			// general timeout (without one it returns at the budget).
			timeout = time.Hour
		}
	} else if minWait > 0 {
		wait = min(wait, 1)
	}
	if timeout < 0 {
		return r.enter(n, wait, flags, nil, 0, how)
	}
	r.ts = unix.NsecToTimespec(int64(timeout))
	r.arg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts))), minWaitUs: minUs}
	return r.enter(n, wait, flags|enterExtArg, unsafe.Pointer(&r.arg), unsafe.Sizeof(r.arg), how)
}

// BatchWait reports whether the kernel supports SubmitAndWaitBatch's
// budget (IORING_FEAT_MIN_TIMEOUT).
func (r *Ring) BatchWait() bool { return r.features&featMinTimeout != 0 }

// enter is io_uring_enter(2). EINTR (a signal) and ETIME (the timeout) end
// a wait without error; EAGAIN and EBUSY (the kernel is short of memory or
// the CQ is overflowing) are returned for the caller to reap and retry.
func (r *Ring) enter(submit, wait, flags uint32, arg unsafe.Pointer, argSize uintptr, how Wait) (int, error) {
	if r.fake != nil {
		return r.fake.enter(), nil
	}
	var n uintptr
	var e unix.Errno
	if how == RawWait || flags&enterGetEvents == 0 || wait == 0 {
		n, _, e = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFD), uintptr(submit), uintptr(wait), uintptr(flags), uintptr(arg), argSize)
	} else {
		n, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFD), uintptr(submit), uintptr(wait), uintptr(flags), uintptr(arg), argSize)
	}
	switch e {
	case 0:
		return int(n), nil
	case unix.EINTR, unix.ETIME:
		return 0, nil
	}
	return 0, os.NewSyscallError("io_uring_enter", e)
}

// Ready is the number of completions waiting in the CQ.
func (r *Ring) Ready() int {
	return int(atomic.LoadUint32(r.kCQTail) - *r.kCQHead)
}

// CQE returns the i-th waiting completion (i < Ready()). It stays valid
// until Advance moves past it.
func (r *Ring) CQE(i int) *CQE {
	return &r.cqes[(*r.kCQHead+uint32(i))&r.cqMask]
}

// Advance gives n completions back to the kernel.
func (r *Ring) Advance(n int) {
	atomic.StoreUint32(r.kCQHead, *r.kCQHead+uint32(n)) // release: done reading them
}

// Overflowing reports whether completions wait in the kernel for room in
// the CQ (IORING_SQ_CQ_OVERFLOW): the next Enter that gets events flushes
// them.
func (r *Ring) Overflowing() bool { return atomic.LoadUint32(r.kSQFlags)&sqCQOverflow != 0 }

// Overflowed is the number of completions the CQ had no room for and the
// kernel had to keep (IORING_FEAT_NODROP: none is lost; they are flushed to
// the CQ by the next Enter that gets events).
func (r *Ring) Overflowed() uint32 { return atomic.LoadUint32(r.kOverflow) }
