package hugepage

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reserve maps size bytes of anonymous memory without a commit charge
// (MAP_NORESERVE: the kernel backs each page on first touch), aligned to
// 2 MiB so that huge pages can back whole extents; base pages are asked
// for over the first RegionPlainBytes and huge pages over the rest. The
// madvise calls are hints: a kernel without THP leaves base pages
// everywhere, and Backed then counts a little more than is held.
func (r *Region) reserve(size int) error {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size+hugeSize), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	head := int(-uintptr(p) & (hugeSize - 1))
	if head > 0 {
		_ = unix.MunmapPtr(p, uintptr(head))
	}
	if tail := hugeSize - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, head+size), uintptr(tail))
	}
	r.mem = unsafe.Slice((*byte)(unsafe.Add(p, head)), size)
	_ = unix.Madvise(r.mem[:RegionPlainBytes], unix.MADV_NOHUGEPAGE)
	if size > RegionPlainBytes {
		r.huge = unix.Madvise(r.mem[RegionPlainBytes:], unix.MADV_HUGEPAGE) == nil
	}
	return nil
}

// commit backs the pages the first n bytes will use (as Backed counts
// them) before anything writes there, with one MADV_POPULATE_WRITE (Linux
// 5.14) for the pages not backed yet: a page the kernel backs on first
// touch costs a fault each, and a fault costs far more than populating
// the page in a batch (on the paravirtualized machines of our benchmarks
// 10-12 µs against 0.6 µs a page; on bare metal the ratio is smaller but
// the same way). ENOMEM refuses the commit, which the caller turns into a
// refusal of the bytes rather than a process the kernel kills on touch. A
// kernel without MADV_POPULATE_WRITE (EINVAL) leaves every region to
// faults, as before.
func (r *Region) commit(n int) error {
	to := r.Backed(n)
	if to <= r.committed || populateRefused.Load() {
		return nil
	}
	switch err := unix.Madvise(r.mem[r.committed:to], madvPopulateWrite); err {
	case nil:
		r.committed = to
	case unix.ENOMEM:
		return os.NewSyscallError("madvise MADV_POPULATE_WRITE", err)
	case unix.EINVAL, unix.ENOSYS, unix.EPERM:
		populateRefused.Store(true)
	} // else (EINTR, EFAULT, EHWPOISON): the pages are faulted in as written
	return nil
}

// populateRefused is set once the kernel refused MADV_POPULATE_WRITE:
// regions are then backed page by page as written.
var populateRefused atomic.Bool

func (r *Region) backed(n int) int {
	if !r.huge || n <= RegionPlainBytes {
		return roundUp(n, os.Getpagesize())
	}
	return RegionPlainBytes + roundUp(n-RegionPlainBytes, hugeSize)
}

// decommit drops the pages with MADV_DONTNEED: the memory goes back to the
// system at once (RSS falls) and the range reads as zeros afterwards.
func (r *Region) decommit(from int) error {
	r.committed = min(r.committed, from)
	return os.NewSyscallError("madvise MADV_DONTNEED", unix.Madvise(r.mem[from:], unix.MADV_DONTNEED))
}

func (r *Region) free(mem []byte) error {
	return os.NewSyscallError("munmap", unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))))
}
