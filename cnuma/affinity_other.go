//go:build !linux && !windows

package cnuma

// No affinity interface is bound on this platform; both calls say so.

func pinThread(int) error         { return ErrUnsupported }
func allowedCPUs() ([]int, error) { return nil, ErrUnsupported }
