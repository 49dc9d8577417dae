package cnuma

import (
	"fmt"
	"math/bits"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Thread affinity through processor groups; the procs are declared for
// mkwinsyscall as in numa_windows.go.

//sys	getProcessAffinityMask(process windows.Handle, procMask *uintptr, sysMask *uintptr) (err error) = kernel32.GetProcessAffinityMask
//sys	setThreadGroupAffinity(thread windows.Handle, affinity *groupAffinity, previous *groupAffinity) (err error) = kernel32.SetThreadGroupAffinity

// groupAffinity is GROUP_AFFINITY: a processor group and a mask of its CPUs.
type groupAffinity struct {
	Mask     uintptr
	Group    uint16
	Reserved [3]uint16
}

// cpusPerGroup is the width of a group's mask; CPU numbers here are
// group*64 + bit, so that one machine-wide number names each logical processor.
const cpusPerGroup = int(unsafe.Sizeof(uintptr(0)) * 8)

// maskCPUs numbers the CPUs set in a group's mask machine-wide.
func maskCPUs(group int, mask uintptr) []int {
	cpus := []int{}
	for m := uint64(mask); m != 0; m &= m - 1 {
		cpus = append(cpus, group*cpusPerGroup+bits.TrailingZeros64(m))
	}
	return cpus
}

func pinThread(cpu int) error {
	ga := groupAffinity{Mask: 1 << (cpu % 64), Group: uint16(cpu / 64)}
	if err := setThreadGroupAffinity(windows.CurrentThread(), &ga, nil); err != nil {
		return fmt.Errorf("cnuma: pin thread to cpu %d: %w", cpu, os.NewSyscallError("SetThreadGroupAffinity", err))
	}
	return nil
}

// allowedCPUs reads the process mask of its primary group, which
// GetProcessAffinityMask reports as group 0 numbering: processes spanning
// several groups (more than 64 CPUs) see only their primary group here.
func allowedCPUs() ([]int, error) {
	var proc, sys uintptr
	if err := getProcessAffinityMask(windows.CurrentProcess(), &proc, &sys); err != nil {
		return nil, fmt.Errorf("cnuma: GetProcessAffinityMask: %w", err)
	}
	return maskCPUs(0, proc), nil
}
