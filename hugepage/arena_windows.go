package hugepage

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// mapArena commits size bytes with VirtualAlloc: base pages, no node binding.
// Large pages (MEM_LARGE_PAGES, which needs SeLockMemoryPrivilege) and
// VirtualAllocExNuma come with the Windows NUMA work of a later issue; until
// then the Arena says plainly that neither was attempted.
func mapArena(size, node int, _ mapOptions) ([]byte, Arena, error) {
	a := Arena{Node: node}
	if node < -1 {
		return nil, a, fmt.Errorf("%w: node %d", ErrNoNode, node)
	}
	size = roundUp(size, hugeSize)
	addr, err := windows.VirtualAlloc(0, uintptr(size), windows.MEM_RESERVE|windows.MEM_COMMIT, windows.PAGE_READWRITE)
	if err != nil {
		return nil, a, fmt.Errorf("hugepage: VirtualAlloc %d bytes: %w", size, err)
	}
	// Read the address as a pointer without a uintptr-to-Pointer conversion:
	// the memory is outside the Go heap and never moves.
	mem := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), size)
	a.Size = size
	a.Kind = PageNormal
	a.PageSize = os.Getpagesize()
	a.Fallbacks = []string{"hugetlb: large pages not attempted on windows yet", "thp: windows has no transparent huge pages"}
	if node >= 0 {
		a.BindErr = "node binding on windows needs VirtualAllocExNuma, not wired yet"
	}
	a.Placement = Placement{Err: "placement is not checked on windows yet"}
	return mem, a, nil
}

func unmapArena(mem []byte, _ *Arena) error {
	return os.NewSyscallError("VirtualFree", windows.VirtualFree(uintptr(unsafe.Pointer(&mem[0])), 0, windows.MEM_RELEASE))
}

// hugeBytes is 0: the arena is never backed by large pages yet.
func hugeBytes([]byte, *Arena) int { return 0 }
