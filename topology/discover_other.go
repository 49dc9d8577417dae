//go:build !linux && !windows

package topology

import "runtime"

// discover knows no NUMA interface here: one node with runtime.NumCPU CPUs that
// cannot be pinned, so plans name CPU -1.
func discover() (*Topology, error) {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	t := &Topology{
		Source: "runtime",
		Nodes:  []Node{{ID: 0, CPUs: cpus, Free: -1, Distances: []int{10}}},
		PUs:    cpus,
		Notes:  []string{runtime.GOOS + ": no numa or affinity interface; one node assumed, loops not pinned, memory unknown"},
	}
	return t, nil
}
