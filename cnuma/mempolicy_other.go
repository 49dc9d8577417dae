//go:build !linux

package cnuma

import "fmt"

// Only Linux has per-range memory policy; elsewhere these say so.

// Bind binds b to node; see the Linux version. It returns ErrUnsupported here.
func Bind(b []byte, node int) error { return fmt.Errorf("%w: mbind", ErrUnsupported) }

// MemPolicy returns b's memory policy; it returns ErrUnsupported here.
func MemPolicy(b []byte) (Policy, error) {
	return Policy{}, fmt.Errorf("%w: get_mempolicy", ErrUnsupported)
}

// PageNode returns the node holding b's first page; it returns ErrUnsupported here.
func PageNode(b []byte) (int, error) { return 0, fmt.Errorf("%w: get_mempolicy", ErrUnsupported) }
