package reactor

// The loop's connection table: Loop.conns, indexed by slot. The kernel
// names a connection by its slot and generation (epoll event data, IOCP
// completion keys, io_uring user data), never by a Go pointer, and an event
// whose generation does not match the slot's connection is stale. A slot is
// taken when a connection opens and given back by retire once the kernel
// holds nothing of the connection: at once with epoll, after the
// completion of its last operation in flight with IOCP and io_uring (until
// then the closed connection stays in its slot, so that those completions
// find it).

// newSlot takes a free slot of the table, growing it when none is free;
// false when the table holds slotLimit connections.
func (l *Loop) newSlot() (uint32, bool) {
	if n := len(l.freeSlots); n > 0 {
		slot := l.freeSlots[n-1]
		l.freeSlots = l.freeSlots[:n-1]
		return slot, true
	}
	if len(l.conns) >= slotLimit {
		return 0, false
	}
	l.conns = append(l.conns, nil)
	return uint32(len(l.conns) - 1), true
}

// retire frees c's slot; the next connection may take it.
func (c *Conn) retire() {
	l := c.loop
	if int(c.slot) < len(l.conns) && l.conns[c.slot] == c {
		l.conns[c.slot] = nil
		l.freeSlots = append(l.freeSlots, c.slot)
	}
}

// connAt returns the connection in slot with generation gen, or nil when
// the event is stale (the slot is free or holds a later connection).
func (l *Loop) connAt(slot, gen uint32) *Conn {
	if int(slot) >= len(l.conns) {
		return nil
	}
	if c := l.conns[slot]; c != nil && c.gen == gen {
		return c
	}
	return nil
}
