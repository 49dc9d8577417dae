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

// commit has nothing to do: pages are backed as they are written.
func (r *Region) commit(int) error { return nil }

func (r *Region) backed(n int) int {
	if !r.huge || n <= RegionPlainBytes {
		return roundUp(n, os.Getpagesize())
	}
	return RegionPlainBytes + roundUp(n-RegionPlainBytes, hugeSize)
}

// prefault backs the pages of the first n bytes that are not backed yet
// with one MADV_POPULATE_WRITE (Linux 5.14); r.committed marks how far.
// A kernel without it (EINVAL) leaves every region to page faults.
func (r *Region) prefault(n int) error {
	to := min(roundUp(n, os.Getpagesize()), len(r.mem))
	if to <= r.committed || populateRefused.Load() {
		return nil
	}
	err := unix.Madvise(r.mem[r.committed:to], madvPopulateWrite)
	switch err {
	case nil:
		r.committed = to
		return nil
	case unix.EINVAL:
		populateRefused.Store(true)
	}
	return os.NewSyscallError("madvise MADV_POPULATE_WRITE", err)
}

// populateRefused is set once the kernel refused MADV_POPULATE_WRITE.
var populateRefused atomic.Bool

// decommit drops the pages with MADV_DONTNEED: the memory goes back to the
// system at once (RSS falls) and the range reads as zeros afterwards.
func (r *Region) decommit(from int) error {
	r.committed = min(r.committed, from)
	return os.NewSyscallError("madvise MADV_DONTNEED", unix.Madvise(r.mem[from:], unix.MADV_DONTNEED))
}

func (r *Region) free(mem []byte) error {
	return os.NewSyscallError("munmap", unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))))
}
