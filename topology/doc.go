// Package topology is the machine as plain Go values — NUMA nodes with their
// CPUs, memory, distances and huge pages; packages, cores, caches and online
// CPUs; network devices with the node they sit on — and the placement plan that
// the echo server's -numa and -workers flags turn into pinned event loops.
//
// Discover reads this machine (hwloc and libnuma with cgo, sysfs without,
// kernel32 on Windows) together with the CPUs this process may run on, so that a
// server started under "taskset -c 0" plans one loop on CPU 0. FromSysFS,
// LoadSynthetic and LoadXML describe other machines, for tests and for planning
// ahead. WriteText and WriteJSON print the report; the JSON is the topo/v1
// document whose fields are the struct tags in report.go, with a "plan" field.
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
//	for i, l := range plan.Loops {
//		fmt.Printf("loop %d: cpu %d, memory from node %d\n", i, l.CPU, l.Node)
//	}
//
// Nothing here is for a hot path: discover once, plan once, keep the result.
package topology
