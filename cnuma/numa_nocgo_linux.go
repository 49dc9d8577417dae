//go:build !cgo

package cnuma

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// Without cgo, libnuma's answers come from the same files libnuma reads
// (/sys/devices/system/node) and its calls become raw syscalls.

var sys SysFS

func available() error {
	_, err := sys.Nodes()
	return err
}

func maxNode() (int, error) {
	nodes, err := sys.Nodes()
	if err != nil {
		return 0, err
	}
	if len(nodes) == 0 {
		return 0, fmt.Errorf("%w: node/online is empty", ErrNoNUMA)
	}
	return nodes[len(nodes)-1], nil
}

func nodeCPUs(node int) ([]int, error) { return sys.NodeCPUs(node) }

func nodeMemory(node int) (Memory, error) { return sys.NodeMemory(node) }

func distance(from, to int) (int, error) {
	nodes, err := sys.Nodes()
	if err != nil {
		return 0, err
	}
	row, err := sys.NodeDistances(from)
	if err != nil {
		return 0, err
	}
	// The row has one column per online node, in ascending order.
	i := slices.Index(nodes, to)
	if i < 0 {
		return 0, fmt.Errorf("%w: %d", ErrNoNode, to)
	}
	if i >= len(row) {
		return 0, fmt.Errorf("cnuma: node%d/distance has %d columns, want %d", from, len(row), len(nodes))
	}
	return row[i], nil
}

func allocOnNode(size, node int) (*Mem, error) {
	if _, err := sys.NodeCPUs(node); err != nil {
		return nil, err
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("cnuma: alloc %d bytes on node %d: %w", size, node, os.NewSyscallError("mmap", err))
	}
	m := &Mem{b: b, node: node}
	if err := Bind(b, node); err != nil {
		// As numa_alloc_onnode does, hand back the memory, but say it is unbound.
		m.reason = err.Error()
		return m, nil
	}
	m.bound, m.reason = checkBound(b, node)
	return m, nil
}

func (m *Mem) release() error {
	if len(m.b) == 0 {
		return nil
	}
	if err := unix.Munmap(m.b); err != nil {
		return fmt.Errorf("cnuma: %w", os.NewSyscallError("munmap", err))
	}
	return nil
}

func runOnNode(node int) error {
	cpus, err := sys.NodeCPUs(node)
	if err != nil {
		return err
	}
	if len(cpus) == 0 {
		return fmt.Errorf("cnuma: run on node %d: node has no CPUs", node)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c >= len(set)*64 {
			return errors.New("cnuma: run on node: cpu beyond CPUSet")
		}
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("cnuma: run on node %d: %w", node, os.NewSyscallError("sched_setaffinity", err))
	}
	return nil
}
