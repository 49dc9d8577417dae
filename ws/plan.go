package ws

import (
	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/topology"
)

// plan places the event loops from the machine's topology: Config.NUMANode
// (-1 = auto: the node of the NIC serving the listen address, else every
// node) and Config.Workers (0 = one loop per usable CPU of those nodes).
func plan(cfg *Config) (*topology.Topology, *topology.Plan, []reactor.LoopSpec, error) {
	topo := cfg.Topology
	if topo == nil {
		var err error
		if topo, err = topology.Discover(); err != nil {
			return nil, nil, nil, err
		}
	}
	sel := topology.Auto
	if cfg.NUMANode >= 0 {
		sel = topology.Selector{Node: cfg.NUMANode}
	}
	p, err := topo.PlanFor(sel, cfg.Workers, cfg.ListenAddr)
	if err != nil {
		return nil, nil, nil, err
	}
	specs := make([]reactor.LoopSpec, len(p.Loops))
	for i, l := range p.Loops {
		specs[i] = reactor.LoopSpec{CPU: l.CPU, Node: l.Node}
	}
	return topo, p, specs, nil
}
