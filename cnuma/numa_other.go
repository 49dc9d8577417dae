//go:build !linux && !windows

package cnuma

// No NUMA interface is bound on this platform; every call says so.

func available() error               { return ErrUnsupported }
func maxNode() (int, error)          { return 0, ErrUnsupported }
func nodes() ([]int, error)          { return nil, ErrUnsupported }
func nodeCPUs(int) ([]int, error)    { return nil, ErrUnsupported }
func nodeMemory(int) (Memory, error) { return Memory{}, ErrUnsupported }
func distance(int, int) (int, error) { return 0, ErrUnsupported }
