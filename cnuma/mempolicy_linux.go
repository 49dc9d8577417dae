package cnuma

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory policy through raw syscalls: both Linux builds use these, because
// x/sys can make the calls without cgo (STYLE.md §2).

// nodeMask is a kernel nodemask for up to 1024 nodes (MAX_NUMNODES at most).
type nodeMask [16]uint64

// maskBits is the maxnode argument for a nodeMask. The kernel reads one bit
// fewer than maxnode (mm/mempolicy.c get_nodes), hence the +1.
const maskBits = len(nodeMask{})*64 + 1

func (m *nodeMask) set(n int)        { m[n/64] |= 1 << (n % 64) }
func (m *nodeMask) isSet(n int) bool { return m[n/64]&(1<<(n%64)) != 0 }
func (m *nodeMask) nodes() (ns []int) {
	for n := 0; n < len(m)*64; n++ {
		if m.isSet(n) {
			ns = append(ns, n)
		}
	}
	return ns
}

// Bind sets MPOL_BIND to node on b (mbind(2)); pages already touched stay where
// they are. b must be page aligned, as memory from mmap is.
func Bind(b []byte, node int) error {
	if err := checkNode(node); err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("cnuma: mbind node %d: empty range", node)
	}
	var m nodeMask
	m.set(node)
	_, _, e := unix.Syscall6(unix.SYS_MBIND, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MPOL_BIND, uintptr(unsafe.Pointer(&m)), uintptr(maskBits), 0)
	if e != 0 {
		return fmt.Errorf("cnuma: mbind node %d: %w", node, os.NewSyscallError("mbind", e))
	}
	return nil
}

// MemPolicy returns the policy of the page holding b[0]
// (get_mempolicy(MPOL_F_ADDR)). It does not fault the page in.
func MemPolicy(b []byte) (Policy, error) {
	if len(b) == 0 {
		return Policy{}, fmt.Errorf("cnuma: get_mempolicy: empty range")
	}
	var mode int32
	var m nodeMask
	_, _, e := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&mode)),
		uintptr(unsafe.Pointer(&m)), uintptr(maskBits), uintptr(unsafe.Pointer(&b[0])), unix.MPOL_F_ADDR, 0)
	if e != 0 {
		return Policy{}, os.NewSyscallError("get_mempolicy", e)
	}
	return Policy{Mode: int(mode), Nodes: m.nodes()}, nil
}

// PageNode returns the node that holds the page of b[0]
// (get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR)); it faults the page in if needed.
func PageNode(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("cnuma: get_mempolicy: empty range")
	}
	var node int32
	_, _, e := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&node)), 0, 0,
		uintptr(unsafe.Pointer(&b[0])), unix.MPOL_F_NODE|unix.MPOL_F_ADDR, 0)
	if e != 0 {
		return 0, os.NewSyscallError("get_mempolicy", e)
	}
	return int(node), nil
}

func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("cnuma: %w", os.NewSyscallError("sched_getaffinity", err))
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func pinThread(cpu int) error {
	var set unix.CPUSet
	if cpu >= len(set)*64 {
		return fmt.Errorf("cnuma: pin thread: cpu %d beyond CPUSet", cpu)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("cnuma: pin thread to cpu %d: %w", cpu, os.NewSyscallError("sched_setaffinity", err))
	}
	return nil
}
