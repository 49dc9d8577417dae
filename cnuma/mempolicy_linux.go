package cnuma

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory policy through raw syscalls: both Linux builds use these, because
// x/sys can make the calls without cgo, and libnuma would add nothing but a
// copy of the node mask.

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

func mbind(b []byte, node int) error {
	var m nodeMask
	m.set(node)
	_, _, e := unix.Syscall6(unix.SYS_MBIND, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MPOL_BIND, uintptr(unsafe.Pointer(&m)), uintptr(maskBits), unix.MPOL_MF_MOVE|unix.MPOL_MF_STRICT)
	if e != 0 {
		return os.NewSyscallError("mbind", e)
	}
	return nil
}

func getMempolicy(b []byte) (Policy, error) {
	var mode int32
	var m nodeMask
	_, _, e := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&mode)),
		uintptr(unsafe.Pointer(&m)), uintptr(maskBits), uintptr(unsafe.Pointer(&b[0])), unix.MPOL_F_ADDR, 0)
	if e != 0 {
		return Policy{}, os.NewSyscallError("get_mempolicy", e)
	}
	return Policy{Mode: int(mode), Nodes: m.nodes()}, nil
}

func pageNode(b []byte) (int, error) {
	var node int32
	_, _, e := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&node)), 0, 0,
		uintptr(unsafe.Pointer(&b[0])), unix.MPOL_F_NODE|unix.MPOL_F_ADDR, 0)
	if e != 0 {
		return 0, os.NewSyscallError("get_mempolicy", e)
	}
	return int(node), nil
}

func movePages(pages []unsafe.Pointer) ([]int, error) {
	status := make([]int32, len(pages))
	_, _, e := unix.Syscall6(unix.SYS_MOVE_PAGES, 0, uintptr(len(pages)), uintptr(unsafe.Pointer(&pages[0])),
		0, uintptr(unsafe.Pointer(&status[0])), 0)
	if e != 0 {
		return nil, os.NewSyscallError("move_pages", e)
	}
	nodes := make([]int, len(status))
	for i, s := range status {
		nodes[i] = int(s)
	}
	return nodes, nil
}
