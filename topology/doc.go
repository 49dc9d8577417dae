// Package topology is the machine as plain Go values — NUMA nodes with their
// CPUs, memory, distances and huge pages; packages, cores, CPU caches
// (CPUCache) and online CPUs; network devices with the node they sit on — and
// the placement plan that the echo server's -numa and -workers flags ask for:
// a Plan holds one Seat, a CPU and a node, per event loop. topology only reads
// and plans; the reactor pins each loop's thread to its Seat's CPU with
// cnuma.PinThread and takes its buffers from a pool on the Seat's node.
//
// Discover reads this machine (hwloc and libnuma with cgo, sysfs without,
// kernel32 on Windows, all through cnuma) together with the CPUs this process
// may run on, so that a server started under "taskset -c 0" plans one loop on
// CPU 0. On Linux it also reads the process's control group (CGroup: the
// cpuset, cpu.max, memory.max and hugetlb limits of a container), so that
// plans stay within a CPU quota and on the nodes the cgroup takes memory
// from, and Alignment says whether a pod's CPUs and memory share one node. FromSysFS, LoadSynthetic and LoadXML describe other machines, for
// tests and for planning ahead. WriteText and WriteJSON print the report; the
// JSON is the topo/v1 document whose fields are the struct tags in report.go,
// with a "plan" field.
//
// Planning errors wrap ErrNoCPU, ErrBadNUMA or ErrBadWorkers, and
// cnuma.ErrNoNode for a -numa node the machine does not have.
//
//	t, err := topology.Discover()
//	if err != nil {
//		return err
//	}
//	sel, err := topology.ParseNUMA("auto")
//	if err != nil {
//		return err
//	}
//	plan, err := t.PlanFor(sel, 0, "10.0.0.5:8080") // loops near the NIC holding 10.0.0.5
//	if err != nil {
//		return err
//	}
//	for i, s := range plan.Loops {
//		fmt.Printf("loop %d: cpu %d, memory from node %d\n", i, s.CPU, s.Node)
//	}
//
// Nothing here is for a hot path: discover once, plan once, keep the result.
package topology
