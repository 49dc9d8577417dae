package hugepage

// ClassStats describes one size class of a pool.
type ClassStats struct {
	Size     int // bytes per buffer
	Capacity int // buffers in the class
	InUse    int // buffers handed out and not yet released for the last time
	Free     int // Capacity - InUse
	// Exhausted counts Gets that returned ErrExhausted for this class.
	Exhausted uint64
	// Pages is the page kind behind the class: hugetlb or base pages as for
	// the arena; in a THP arena, PageTHP if any of the class's memory is huge
	// and PageNormal if none is, or the arena's kind when HugeBytes is -1.
	Pages PageKind
	// HugeBytes is how many of the class's bytes huge pages backed when New
	// checked (THP can be split or collapsed later), or -1 when it could not
	// be measured per class (in a THP arena that needs root, for
	// /proc/self/pagemap frame numbers and /proc/kpageflags).
	HugeBytes int
}

// Stats is a snapshot of a pool: its node, its memory and its classes.
type Stats struct {
	Node    int // the node asked for, -1 for none
	Arena   Arena
	InUse   int // sum over classes
	Classes []ClassStats
}

// Stats takes a snapshot. The counts are read slot by slot while other
// goroutines may Get and Release, so they are exact only when the pool is
// quiet. It allocates; call it from a stats ticker, not per message.
func (p *Pool) Stats() Stats {
	s := Stats{Node: p.arena.Node, Arena: p.arena, Classes: make([]ClassStats, len(p.classes))}
	for i := range p.classes {
		c := &p.classes[i]
		n := c.inUse()
		s.Classes[i] = ClassStats{
			Size:      c.size,
			Capacity:  len(c.slots),
			InUse:     n,
			Free:      len(c.slots) - n,
			Exhausted: c.failed.Load(),
			Pages:     c.pages(),
			HugeBytes: c.huge,
		}
		s.InUse += n
	}
	return s
}

// pages is the page kind of the class's memory (see ClassStats.Pages).
func (c *class) pages() PageKind {
	k := c.pool.arena.Kind
	if k != PageTHP || c.huge < 0 {
		return k
	}
	if c.huge == 0 {
		return PageNormal
	}
	return PageTHP
}
