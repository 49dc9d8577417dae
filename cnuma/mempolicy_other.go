//go:build !linux

package cnuma

import (
	"fmt"
	"unsafe"
)

// Only Linux has per-range memory policy; elsewhere every call says so.

func mbind([]byte, int) error {
	return fmt.Errorf("%w: mbind", ErrUnsupported)
}

func getMempolicy([]byte) (Policy, error) {
	return Policy{}, fmt.Errorf("%w: get_mempolicy", ErrUnsupported)
}

func pageNode([]byte) (int, error) {
	return 0, fmt.Errorf("%w: get_mempolicy", ErrUnsupported)
}

func movePages([]unsafe.Pointer) ([]int, error) {
	return nil, fmt.Errorf("%w: move_pages", ErrUnsupported)
}
