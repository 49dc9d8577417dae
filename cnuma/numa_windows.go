package cnuma

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// x/sys/windows has none of the NUMA procs. The //sys lines here, in
// affinity_windows.go and in alloc_windows.go declare them, and mkwinsyscall
// turns them into zsyscall_windows.go (go generate ./cnuma, from the
// go:generate line in cnuma.go, which runs on any host).

//sys	getNumaHighestNodeNumber(highest *uint32) (err error) = kernel32.GetNumaHighestNodeNumber
//sys	getNumaNodeProcessorMaskEx(node uint16, affinity *groupAffinity) (err error) = kernel32.GetNumaNodeProcessorMaskEx
//sys	getNumaAvailableMemoryNodeEx(node uint16, avail *uint64) (err error) = kernel32.GetNumaAvailableMemoryNodeEx

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

// nodes lists the ids up to GetNumaHighestNodeNumber that have a processor
// mask; ids may have holes.
func nodes() ([]int, error) {
	highest, err := maxNode()
	if err != nil {
		return nil, err
	}
	var ids []int
	for n := 0; n <= highest; n++ {
		if _, err := nodeAffinity(n); err == nil {
			ids = append(ids, n)
		}
	}
	return ids, nil
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
