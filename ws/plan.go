package ws

import (
	"fmt"
	"runtime"

	"github.com/hioload-ws/hioload-ws/reactor"
)

// planLoops places the event loops: one per CPU this process may run on
// (its affinity mask), or workers loops spread round-robin over them.
func planLoops(node, workers int) ([]reactor.LoopSpec, error) {
	cpus, err := allowedCPUs()
	if err != nil {
		return nil, err
	}
	if node > 0 {
		return nil, fmt.Errorf("ws: NUMA node %d does not exist (nodes: 0)", node)
	}
	n := workers
	if n == 0 {
		n = len(cpus)
	}
	specs := make([]reactor.LoopSpec, n)
	for i := range specs {
		cpu := -1
		if len(cpus) > 0 {
			cpu = cpus[i%len(cpus)]
		}
		specs[i] = reactor.LoopSpec{CPU: cpu, Node: max(node, 0)}
	}
	return specs, nil
}

func fallbackCPUs() []int {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}
