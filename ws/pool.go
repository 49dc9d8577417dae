package ws

import (
	"errors"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/reactor"
)

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
				a := p.Arena()
				s.log.Info("ws: buffer pool", "node", node, "pages", a.Kind.String(), "bytes", a.Size,
					"huge_bytes", a.HugeBytes, "bound", a.Bound, "bind_err", a.BindErr,
					"placement", a.Placement.String(), "fallbacks", a.Fallbacks)
				s.pools = append(s.pools, p)
			}
			byNode[node] = p
		}
		specs[i].Pool = p
	}
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

// PoolStats returns each pool's snapshot (page kind, placement, buffers in
// use per class). It allocates; call it from a stats ticker.
func (s *Server) PoolStats() []hugepage.Stats {
	st := make([]hugepage.Stats, len(s.pools))
	for i, p := range s.pools {
		st[i] = p.Stats()
	}
	return st
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
