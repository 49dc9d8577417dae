package ws

import (
	"errors"
	"strings"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/topology"
)

// Where the loops run and whose memory they use: the plan from the
// machine's topology, and one buffer pool per NUMA node the plan uses.

// planLoops places the event loops from the machine's topology: Config.NUMANode
// (-1 = auto: the node of the NIC serving the listen address, else every
// node) and Config.Workers (0 = one loop per usable CPU of those nodes).
func (s *Server) planLoops() ([]reactor.LoopSpec, error) {
	topo := s.cfg.Topology
	if topo == nil {
		var err error
		if topo, err = topology.Discover(); err != nil {
			return nil, err
		}
	}
	sel := topology.Auto
	if s.cfg.NUMANode >= 0 {
		sel = topology.Selector{Node: s.cfg.NUMANode}
	}
	p, err := topo.PlanFor(sel, s.cfg.Workers, s.cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	s.plan = p
	specs := make([]reactor.LoopSpec, len(p.Loops))
	for i, l := range p.Loops {
		specs[i] = reactor.LoopSpec{CPU: l.CPU, Node: l.Node}
	}
	return specs, nil
}

// PoolBytes is what one NUMA node's buffer pool maps for these PoolClasses
// (hugepage.ArenaSize), 0 with NoPool. NewServer maps one pool per node of
// its plan, whole, before Run: from huge pages when reserved, otherwise
// from memory the process's memory limit counts.
func (c *Config) PoolBytes() (int64, error) {
	if c.NoPool {
		return 0, nil
	}
	n, err := hugepage.ArenaSize(c.PoolClasses)
	return int64(n), err
}

// newPools maps one pool per node the plan uses and hands each loop its
// node's pool. A pool that cannot be made is logged and its loops use the
// Go heap: the server runs, and says what memory it got.
func (s *Server) newPools(specs []reactor.LoopSpec) {
	if s.cfg.NoPool {
		s.log.Info("ws: buffer pools off: loops use the Go heap")
		return
	}
	byNode := map[int]*hugepage.Pool{}
	for i := range specs {
		node := specs[i].Node
		p, ok := byNode[node]
		if !ok {
			var err error
			p, err = hugepage.New(hugepage.Config{
				Node:      node,
				Classes:   s.cfg.PoolClasses,
				NoHugetlb: s.cfg.NoHugepages,
				NoTHP:     s.cfg.NoHugepages,
			})
			if err != nil {
				s.log.Warn("ws: no buffer pool for node; its loops use the Go heap", "node", node, "err", err)
			} else {
				s.logPool(p)
				s.pools = append(s.pools, p)
			}
			byNode[node] = p
		}
		specs[i].Pool = p
	}
}

// logPool says what memory a pool got: the page kind, its binding and
// placement, and why each better kind was not used (a machine without
// reserved huge pages is a plain fact, not an error: fallbacks says it in
// those words). bind_err appears only when the binding was refused.
func (s *Server) logPool(p *hugepage.Pool) {
	a := p.Arena()
	attrs := []any{"node", a.Node, "pages", a.Kind.String(), "bytes", a.Size, "huge_bytes", a.HugeBytes,
		"bound", a.Bound, "placement", a.Placement.String()}
	if a.BindErr != "" {
		attrs = append(attrs, "bind_err", a.BindErr)
	}
	if len(a.Fallbacks) > 0 {
		attrs = append(attrs, "fallbacks", strings.Join(a.Fallbacks, "; "))
	}
	s.log.Info("ws: buffer pool", attrs...)
}

// closePools unmaps the pools once every buffer is back. Buffers a handler
// retained and has not released keep their pool mapped; that is reported.
func (s *Server) closePools() error {
	var errs []error
	for _, p := range s.pools {
		if n := p.InUse(); n > 0 {
			s.log.Warn("ws: pool buffers still in use at shutdown (retained and not released)", "node", p.Node(), "buffers", n)
		}
		if err := p.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PoolStats describes one NUMA node's buffer pool: what memory it got, as
// the kernel reports it, and its size classes.
type PoolStats struct {
	Node      int
	Pages     string   // page kind: "hugetlb", "thp", "normal" or "goheap"
	Bytes     int      // bytes mapped
	HugeBytes int      // bytes huge pages back
	PageSize  int      // the kernel's page size for the mapping
	Bound     bool     // the kernel confirmed the binding to Node
	BindErr   string   // why it is not bound, if it is not
	Placement string   // where the kernel says sampled pages are
	OnNode    bool     // every sampled page is on Node
	Fallbacks []string // why each better page kind was not used
	InUse     int      // buffers handed out and not yet released
	Classes   []PoolClassStats
}

// PoolClassStats describes one size class of a pool.
type PoolClassStats struct {
	Size      int    // bytes per buffer
	Capacity  int    // buffers in the class
	InUse     int    // buffers handed out
	Exhausted uint64 // Gets refused because the class was empty
	Pages     string // page kind behind the class
	HugeBytes int    // bytes huge pages back; -1: not measurable here
}

// PoolStats returns each pool's snapshot. It allocates; call it from a
// stats ticker.
func (s *Server) PoolStats() []PoolStats {
	out := make([]PoolStats, len(s.pools))
	for i, p := range s.pools {
		st, a := p.Stats(), p.Arena()
		ps := PoolStats{
			Node: st.Node, Pages: a.Kind.String(), Bytes: a.Size, HugeBytes: a.HugeBytes, PageSize: a.PageSize,
			Bound: a.Bound, BindErr: a.BindErr, Placement: a.Placement.String(),
			OnNode: a.Placement.OnNode(st.Node), Fallbacks: a.Fallbacks, InUse: st.InUse,
		}
		for _, c := range st.Classes {
			ps.Classes = append(ps.Classes, PoolClassStats{
				Size: c.Size, Capacity: c.Capacity, InUse: c.InUse, Exhausted: c.Exhausted,
				Pages: c.Pages.String(), HugeBytes: c.HugeBytes,
			})
		}
		out[i] = ps
	}
	return out
}

// PoolsInUse is the number of pool buffers handed out and not yet released,
// over all pools: 0 after Shutdown unless a handler kept a Buffer.
func (s *Server) PoolsInUse() int {
	n := 0
	for _, p := range s.pools {
		n += p.InUse()
	}
	return n
}
