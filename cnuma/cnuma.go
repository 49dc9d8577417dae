package cnuma

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go numa_windows.go

import (
	"errors"
	"fmt"
)

// Each platform file defines these hooks; the exported functions below only
// check arguments and wrap them:
//
//	available() error                     NUMA policy can be used at all
//	maxNode() (int, error)                highest node id the system has
//	nodeCPUs(node int) ([]int, error)     CPUs of a node, ascending
//	nodeMemory(node int) (Memory, error)  total and free bytes of a node
//	distance(from, to int) (int, error)   SLIT distance, 10 = local
//	pinThread(cpu int) error              restrict the calling thread to one CPU
//	allowedCPUs() ([]int, error)          CPUs the process may run on

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

func checkNode(node int) error {
	if node < 0 || node > maxNodeID {
		return fmt.Errorf("%w: %d", ErrNoNode, node)
	}
	return nil
}

// maxNodeID bounds node ids we accept (Linux MAX_NUMNODES is at most 1024).
const maxNodeID = 1023
