//go:build !cgo

package cnuma

import (
	"fmt"
	"slices"
)

// Without cgo, libnuma's answers come from the same files libnuma reads
// (/sys/devices/system/node).

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

func nodes() ([]int, error) { return sys.Nodes() }

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
