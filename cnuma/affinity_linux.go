package cnuma

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Thread affinity through x/sys: both Linux builds use these.

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
