package cnuma

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go numa_windows.go affinity_windows.go alloc_windows.go

import (
	"errors"
	"fmt"
	"unsafe"
)

// The exported functions below check their arguments and call hooks that the
// platform files define.
//
// Nodes: numa_cgo.go (linux && cgo: libnuma), numa_nocgo_linux.go (linux &&
// !cgo: sysfs), numa_windows.go (kernel32) and numa_other.go (ErrUnsupported):
//
//	available() error                     NUMA can be used at all
//	maxNode() (int, error)                highest node id the system has
//	nodes() ([]int, error)                the node ids there are, ascending
//	nodeCPUs(node int) ([]int, error)     CPUs of a node, ascending
//	nodeMemory(node int) (Memory, error)  total and free bytes of a node
//	distance(from, to int) (int, error)   SLIT distance, 10 = local
//
// Thread affinity: affinity_linux.go (sched_setaffinity, sched_getaffinity),
// affinity_windows.go (processor groups) and affinity_other.go
// (ErrUnsupported):
//
//	pinThread(cpu int) error              restrict the calling thread to one CPU
//	allowedCPUs() ([]int, error)          CPUs the process may run on
//
// Memory policy: mempolicy_linux.go (raw syscalls through x/sys, no cgo) and
// mempolicy_other.go (ErrUnsupported; Windows has no per-range policy):
//
//	mbind(b []byte, node int) error                   MPOL_BIND b to node, moving its pages
//	getMempolicy(b []byte) (Policy, error)            policy of the page holding b[0]
//	pageNode(b []byte) (int, error)                   node holding the page of b[0]
//	movePages(pages []unsafe.Pointer) ([]int, error)  node (or -errno) of each page

// Sentinel errors; wrapped errors say which call failed and why.
var (
	// ErrUnsupported is returned on platforms without a NUMA interface here.
	ErrUnsupported = errors.New("cnuma: not supported on this platform")
	// ErrNoNUMA means the kernel has no NUMA support (numa_available() < 0 or no
	// node directory in sysfs).
	ErrNoNUMA = errors.New("cnuma: numa not available")
	// ErrNoNode means a node id that does not exist on this machine.
	ErrNoNode = errors.New("cnuma: no such node")
	// ErrNoHwloc means this build has no hwloc (it needs linux and cgo).
	ErrNoHwloc = errors.New("cnuma: hwloc not built in (needs linux and cgo)")
)

// Memory is a node's memory in bytes. HasTotal is false where the platform only
// reports free memory (Windows); Total is then 0.
type Memory struct {
	Total    uint64
	Free     uint64
	HasTotal bool
}

// Policy is a memory range's NUMA policy, as get_mempolicy(2) reports it.
type Policy struct {
	Mode  int   // MPOL_DEFAULT (0), MPOL_PREFERRED (1), MPOL_BIND (2), MPOL_INTERLEAVE (3), ...
	Nodes []int // the policy's nodes; empty for MPOL_DEFAULT
}

// Available returns nil when NUMA memory policy can be used, else an error
// wrapping ErrNoNUMA or ErrUnsupported.
func Available() error { return available() }

// MaxNode returns the highest node id. Node ids may have holes; NodeCPUs returns
// ErrNoNode for a missing one.
func MaxNode() (int, error) { return maxNode() }

// Nodes returns the ids of this machine's nodes, ascending. On Linux it reads
// node/online in sysfs, with or without cgo: libnuma's numa_available() fails
// where get_mempolicy is refused (Docker's default seccomp profile, without
// CAP_SYS_NICE) although the nodes are there. A kernel without NUMA gives
// ErrNoNUMA. On Windows they are the nodes kernel32 knows processors for.
func Nodes() ([]int, error) { return nodes() }

// NodeCPUs returns the CPUs of node in ascending order.
func NodeCPUs(node int) ([]int, error) {
	if err := checkNode(node); err != nil {
		return nil, err
	}
	return nodeCPUs(node)
}

// NodeMemory returns the total and free memory of node.
func NodeMemory(node int) (Memory, error) {
	if err := checkNode(node); err != nil {
		return Memory{}, err
	}
	return nodeMemory(node)
}

// Distance returns the SLIT distance between two nodes (10 = local).
func Distance(from, to int) (int, error) {
	if err := checkNode(from); err != nil {
		return 0, err
	}
	if err := checkNode(to); err != nil {
		return 0, err
	}
	return distance(from, to)
}

// PinThread restricts the calling OS thread to one CPU: sched_setaffinity on
// Linux, SetThreadGroupAffinity on Windows (cpu numbered across processor
// groups, 64 to a group). Call it after runtime.LockOSThread.
func PinThread(cpu int) error {
	if cpu < 0 {
		return fmt.Errorf("cnuma: pin thread: cpu %d", cpu)
	}
	return pinThread(cpu)
}

// AllowedCPUs returns the CPUs this process may run on (its affinity mask, as
// taskset, a cgroup cpuset or a container limit set it), ascending.
func AllowedCPUs() ([]int, error) { return allowedCPUs() }

// Bind sets MPOL_BIND to node on b with mbind(2), passing MPOL_MF_MOVE and
// MPOL_MF_STRICT: pages of b already faulted in are migrated to node, and if
// one cannot be (another process maps it too, or node has no free page) the
// call fails with EIO. So a nil error means every page of b, present or to
// come, is on node; on a fresh mapping, with no page present, the flags cost
// nothing. b must be page aligned, as memory from mmap is. Linux only; other
// platforms return ErrUnsupported.
func Bind(b []byte, node int) error {
	if err := checkNode(node); err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("cnuma: mbind node %d: empty range", node)
	}
	return mbind(b, node)
}

// MemPolicy returns the policy of the page holding b[0]
// (get_mempolicy(MPOL_F_ADDR)). It does not fault the page in. Linux only.
func MemPolicy(b []byte) (Policy, error) {
	if len(b) == 0 {
		return Policy{}, fmt.Errorf("cnuma: get_mempolicy: empty range")
	}
	return getMempolicy(b)
}

// PageNode returns the node that holds the page of b[0]
// (get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR)); it faults the page in if needed.
// Linux only.
func PageNode(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("cnuma: get_mempolicy: empty range")
	}
	return pageNode(b)
}

// PageNodes returns, for each address in pages, the node that holds its page,
// as move_pages(2) reports it when given no target nodes: it moves nothing and
// faults nothing in. A page not present reads as -ENOENT (-2), an address
// outside any mapping as -EFAULT (-14). Linux only.
func PageNodes(pages []unsafe.Pointer) ([]int, error) {
	if len(pages) == 0 {
		return nil, fmt.Errorf("cnuma: move_pages: no pages")
	}
	return movePages(pages)
}

func checkNode(node int) error {
	if node < 0 || node > maxNodeID {
		return fmt.Errorf("%w: %d", ErrNoNode, node)
	}
	return nil
}

// maxNodeID bounds node ids we accept (Linux MAX_NUMNODES is at most 1024).
const maxNodeID = 1023
