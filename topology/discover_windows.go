package topology

import (
	"fmt"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// discover asks kernel32 through cnuma: nodes, their CPUs and free memory, and
// the process affinity mask. Windows gives no per-node total memory and no
// distances here, and Notes says so.
func discover() (*Topology, error) {
	highest, err := cnuma.MaxNode()
	if err != nil {
		return nil, err
	}
	t := &Topology{Source: "windows", CanPin: true}
	for id := 0; id <= highest; id++ {
		cpus, err := cnuma.NodeCPUs(id)
		if err != nil {
			continue // node numbers may have holes
		}
		n := Node{ID: id, CPUs: cpus, Free: -1}
		if mem, err := cnuma.NodeMemory(id); err == nil {
			n.Free = int64(mem.Free)
		}
		t.Nodes = append(t.Nodes, n)
		t.PUs = append(t.PUs, cpus...)
	}
	if len(t.Nodes) == 0 {
		return nil, fmt.Errorf("topology: windows reports no numa node up to %d", highest)
	}
	t.Notes = append(t.Notes, "windows: per-node total memory unknown (memory 0)")
	if t.Allowed, err = cnuma.AllowedCPUs(); err != nil {
		return nil, err
	}
	t.normalize()
	t.assumeDistances("windows publishes no distances")
	return t, nil
}
