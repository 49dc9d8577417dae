// Package cnuma binds the operating system's NUMA and CPU affinity interfaces
// and decides nothing: which nodes exist, which CPUs and how much memory each
// holds, and how far apart they are (Nodes, MaxNode, NodeCPUs, NodeMemory,
// Distance); which CPUs this process may run on and how to pin a thread to one
// (AllowedCPUs, PinThread); how to bind a memory range to a node and ask where
// its pages are (Bind, MemPolicy, PageNode, PageNodes). LoadHwloc and SysFS
// describe a machine as hwloc and sysfs see it. Choosing nodes and CPUs is
// topology's work; mapping and binding arenas, and reporting what the kernel
// refused, is hugepage's.
//
// It is the only package in the module that uses cgo, and every C reference
// lives in a file named for it. What each build uses:
//
//   - linux && cgo: libnuma for the node queries (numa_cgo.go, linked with
//     -lnuma) and hwloc 2.x, found by pkg-config (hwloc_cgo.go).
//   - linux && !cgo: the node queries read the files libnuma reads,
//     /sys/devices/system/node (numa_nocgo_linux.go); LoadHwloc returns
//     ErrNoHwloc.
//   - linux, both builds: Nodes reads sysfs; memory policy (mbind,
//     get_mempolicy, move_pages in mempolicy_linux.go) and affinity
//     (sched_setaffinity, sched_getaffinity in affinity_linux.go) are raw
//     syscalls through golang.org/x/sys/unix.
//   - windows: GetNumaHighestNodeNumber, GetNumaNodeProcessorMaskEx and
//     GetNumaAvailableMemoryNodeEx (numa_windows.go), GetProcessAffinityMask
//     and SetThreadGroupAffinity (affinity_windows.go) and VirtualAllocExNuma
//     (alloc_windows.go, behind the Windows-only VirtualAllocNuma), declared on
//     //sys lines and generated into zsyscall_windows.go by mkwinsyscall.
//     Windows has no per-range memory policy: Bind, MemPolicy, PageNode and
//     PageNodes return ErrUnsupported.
//   - everything else: ErrUnsupported from every call (numa_other.go,
//     affinity_other.go, mempolicy_other.go).
//
// cnuma.go declares the exported API once and lists the hooks each of those
// files defines. The sysfs reader (SysFS) and the cpulist parser
// (ParseCPUList, FormatCPUList) are plain Go and build everywhere, so tests
// drive them with fake trees (testdata/sysfs, unpacked by internal/sysfstest).
//
// Every call returns an error naming the failed C call or syscall with its
// errno; none answers a failure with a silent zero. ErrNoNode is the one
// sentinel for a node the machine lacks: hugepage and topology wrap it.
// Nothing here is meant for a hot path: call it at start-up, not per message.
//
// A short example, printing each node with its CPUs:
//
//	nodes, err := cnuma.Nodes()
//	if err != nil {
//		return err // ErrNoNUMA on a kernel without NUMA
//	}
//	for _, n := range nodes {
//		cpus, err := cnuma.NodeCPUs(n)
//		if err != nil {
//			return err
//		}
//		fmt.Println(n, cnuma.FormatCPUList(cpus))
//	}
package cnuma
