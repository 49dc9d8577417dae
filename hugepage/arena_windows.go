package hugepage

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// On Windows an arena is committed with VirtualAllocExNuma on the pool's
// node. Large pages (MEM_LARGE_PAGES) are the hugetlb kind here: explicit,
// locked in memory, never split or paged out; they need the "Lock pages in
// memory" right (SeLockMemoryPrivilege), which mapArena enables in the
// process token when the account holds it. Without it, or when Windows
// cannot find enough contiguous physical memory, the arena falls back to
// base pages and Arena.Fallbacks says why. Windows has no transparent huge
// pages.
//
// VirtualAllocExNuma prefers the node, it does not bind: when the node is
// out of memory Windows takes pages elsewhere. So Bound stays false and
// Placement (QueryWorkingSetEx on sampled pages) says where the pages are.

// placementSamples is how many pages Placement asks about.
const placementSamples = 16

func mapArena(size, node int, o mapOptions) ([]byte, Arena, error) {
	a := Arena{Node: node, Size: size}
	if o.noHugetlb {
		a.Fallbacks = append(a.Fallbacks, "large pages: not asked for (NoHugetlb)")
	} else {
		mem, err := mapLarge(size, node)
		if err == nil {
			a.Kind, a.PageSize, a.HugeBytes = PageHugetlb, int(windows.GetLargePageMinimum()), size
			finish(mem, &a)
			return mem, a, nil
		}
		a.Fallbacks = append(a.Fallbacks, "large pages: "+err.Error())
	}
	a.Fallbacks = append(a.Fallbacks, "thp: windows has no transparent huge pages")
	mem, err := mapAligned(size, node)
	if err != nil {
		return nil, a, err
	}
	// Fault every page in now, so that it is placed (on the preferred node)
	// here and not on a loop's first touch.
	for off := 0; off < size; off += os.Getpagesize() {
		mem[off] = 0
	}
	a.Kind, a.PageSize = PageNormal, os.Getpagesize()
	finish(mem, &a)
	return mem, a, nil
}

// mapLarge commits size bytes of large pages preferring node. Large pages
// are resident and locked once VirtualAllocExNuma returns.
func mapLarge(size, node int) ([]byte, error) {
	large := int(windows.GetLargePageMinimum())
	if large == 0 {
		return nil, errors.New("GetLargePageMinimum is 0: the processor has no large pages")
	}
	if size%large != 0 {
		return nil, fmt.Errorf("arena size %d is not a multiple of the large page size %d", size, large)
	}
	if err := lockMemoryPrivilege(); err != nil {
		return nil, err
	}
	// Large pages come aligned to their size, which hugeSize divides.
	return cnuma.VirtualAllocNuma(0, size, node, windows.MEM_RESERVE|windows.MEM_COMMIT|windows.MEM_LARGE_PAGES)
}

// mapAligned commits size bytes of base pages, preferring node, starting on
// a hugeSize boundary as the pool's layout needs (VirtualAlloc aligns to
// 64 KiB only): it reserves hugeSize more address space than needed and
// commits the aligned part. A reservation takes no memory; unmapArena frees
// the whole of it from the allocation base.
func mapAligned(size, node int) ([]byte, error) {
	res, err := windows.VirtualAlloc(0, uintptr(size+hugeSize), windows.MEM_RESERVE, windows.PAGE_NOACCESS)
	if err != nil {
		return nil, fmt.Errorf("hugepage: VirtualAlloc reserve %d bytes: %w", size+hugeSize, err)
	}
	aligned := (res + hugeSize - 1) &^ (hugeSize - 1)
	mem, err := cnuma.VirtualAllocNuma(aligned, size, node, windows.MEM_COMMIT)
	if err != nil {
		windows.VirtualFree(res, 0, windows.MEM_RELEASE)
		return nil, fmt.Errorf("hugepage: %w", err)
	}
	return mem, nil
}

// lockMemoryPrivilege enables SeLockMemoryPrivilege in the process token,
// once per process, and reports whether it is enabled.
var lockMemoryPrivilege = sync.OnceValue(func() error {
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		return fmt.Errorf("OpenProcessToken: %w", err)
	}
	defer tok.Close()
	name, _ := windows.UTF16PtrFromString("SeLockMemoryPrivilege")
	var luid windows.LUID
	if err := windows.LookupPrivilegeValue(nil, name, &luid); err != nil {
		return fmt.Errorf("LookupPrivilegeValue SeLockMemoryPrivilege: %w", err)
	}
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
	if err := windows.AdjustTokenPrivileges(tok, false, &tp, 0, nil, nil); err != nil {
		return fmt.Errorf("AdjustTokenPrivileges SeLockMemoryPrivilege: %w", err)
	}
	// AdjustTokenPrivileges succeeds with ERROR_NOT_ALL_ASSIGNED when the
	// account does not hold the right, and x/sys drops that: read it back.
	enabled, err := privilegeEnabled(tok, luid)
	if err != nil {
		return err
	}
	if !enabled {
		return errors.New("SeLockMemoryPrivilege not held (grant \"Lock pages in memory\" to the account, then log on again)")
	}
	return nil
})

// privilegeEnabled reads the token's privileges and reports whether luid is
// among them and enabled.
func privilegeEnabled(tok windows.Token, luid windows.LUID) (bool, error) {
	var n uint32
	windows.GetTokenInformation(tok, windows.TokenPrivileges, nil, 0, &n)
	if n < uint32(unsafe.Sizeof(windows.Tokenprivileges{})) {
		n = uint32(unsafe.Sizeof(windows.Tokenprivileges{}))
	}
	buf := make([]byte, n)
	if err := windows.GetTokenInformation(tok, windows.TokenPrivileges, &buf[0], n, &n); err != nil {
		return false, fmt.Errorf("GetTokenInformation TokenPrivileges: %w", err)
	}
	tp := (*windows.Tokenprivileges)(unsafe.Pointer(&buf[0]))
	for _, p := range tp.AllPrivileges() {
		if p.Luid == luid {
			return p.Attributes&windows.SE_PRIVILEGE_ENABLED != 0, nil
		}
	}
	return false, nil
}

// finish records binding and placement for a mapped arena.
func finish(mem []byte, a *Arena) {
	if a.Node >= 0 {
		a.BindErr = fmt.Sprintf("windows: VirtualAllocExNuma prefers node %d, it does not bind (see placement)", a.Node)
	}
	a.Placement = placement(mem)
}

// placement asks QueryWorkingSetEx which node holds each of a few sampled
// pages (all resident: mapArena faulted them in).
func placement(mem []byte) Placement {
	var info [placementSamples]windows.PSAPI_WORKING_SET_EX_INFORMATION
	step := max(len(mem)/placementSamples, os.Getpagesize())
	n := 0
	for off := 0; off < len(mem) && n < len(info); off += step {
		info[n].VirtualAddress = windows.Pointer(unsafe.Pointer(&mem[off]))
		n++
	}
	pl := Placement{Method: "QueryWorkingSetEx", Nodes: map[int]int{}}
	err := windows.QueryWorkingSetEx(windows.CurrentProcess(), uintptr(unsafe.Pointer(&info[0])),
		uint32(uintptr(n)*unsafe.Sizeof(info[0])))
	if err != nil {
		return Placement{Err: "QueryWorkingSetEx: " + err.Error()}
	}
	for _, in := range info[:n] {
		if !in.VirtualAttributes.Valid() {
			continue // not resident: says nothing about a node
		}
		pl.Sampled++
		pl.Nodes[int(in.VirtualAttributes.Node())]++
	}
	if pl.Sampled == 0 {
		return Placement{Err: "QueryWorkingSetEx: no sampled page is resident"}
	}
	return pl
}

// unmapArena releases the whole reservation mem lies in (mapAligned's
// reservation starts before mem).
func unmapArena(mem []byte, _ *Arena) error {
	var mbi windows.MemoryBasicInformation
	if err := windows.VirtualQuery(uintptr(unsafe.Pointer(&mem[0])), &mbi, unsafe.Sizeof(mbi)); err != nil {
		return os.NewSyscallError("VirtualQuery", err)
	}
	return os.NewSyscallError("VirtualFree", windows.VirtualFree(mbi.AllocationBase, 0, windows.MEM_RELEASE))
}

// hugeBytes is all of part for a large-page arena and none otherwise: a
// Windows mapping is one kind throughout.
func hugeBytes(part []byte, a *Arena) int {
	if a.Kind == PageHugetlb {
		return len(part)
	}
	return 0
}
