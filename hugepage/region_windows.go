package hugepage

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// reserve reserves size bytes of address space (MEM_RESERVE), which uses no
// memory and no commit charge until commit.
func (r *Region) reserve(size int) error {
	p, err := windows.VirtualAlloc(0, uintptr(size), windows.MEM_RESERVE, windows.PAGE_NOACCESS)
	if err != nil {
		return os.NewSyscallError("VirtualAlloc MEM_RESERVE", err)
	}
	// p is memory outside the Go heap (as in cnuma.VirtualAllocNuma).
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	r.mem = unsafe.Slice((*byte)(base), size)
	return nil
}

// commit commits the reservation from the start in RegionCommitStep steps
// (MEM_COMMIT, preferring the region's node): Windows charges commit for
// those pages, and backs them with memory on first touch.
func (r *Region) commit(n int) error {
	if n <= r.committed {
		return nil
	}
	to := min(roundUp(n, RegionCommitStep), len(r.mem))
	addr := uintptr(unsafe.Pointer(&r.mem[r.committed]))
	if _, err := cnuma.VirtualAllocNuma(addr, to-r.committed, r.node, windows.MEM_COMMIT); err != nil {
		return err
	}
	r.committed = to
	return nil
}

// prefault has nothing to do: committed pages are backed on first touch,
// and Windows has no call that backs them in advance.
func (r *Region) prefault(int) error { return nil }

// backed counts committed memory: what Commit took for n bytes.
func (r *Region) backed(n int) int { return roundUp(n, RegionCommitStep) }

// decommit decommits the committed part from from on (MEM_DECOMMIT): the
// memory and the commit charge go back; Commit must run again before the
// range is written.
func (r *Region) decommit(from int) error {
	if from >= r.committed {
		return nil
	}
	err := windows.VirtualFree(uintptr(unsafe.Pointer(&r.mem[from])), uintptr(r.committed-from), windows.MEM_DECOMMIT)
	if err != nil {
		return os.NewSyscallError("VirtualFree MEM_DECOMMIT", err)
	}
	r.committed = from
	return nil
}

func (r *Region) free(mem []byte) error {
	return os.NewSyscallError("VirtualFree MEM_RELEASE", windows.VirtualFree(uintptr(unsafe.Pointer(unsafe.SliceData(mem))), 0, windows.MEM_RELEASE))
}
