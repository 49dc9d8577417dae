// Package hugepage provides NUMA-local slab pools of buffers backed, when the
// machine allows it, by huge pages.
//
// A Pool maps one arena for one node: from the hugetlb reservation
// (MAP_HUGETLB) when enough huge pages are reserved, else anonymous memory
// aligned to 2 MiB with MADV_HUGEPAGE (transparent huge pages), else base
// pages. It binds the arena to the node (cnuma.Bind, mbind), faults every page
// in with MADV_POPULATE_WRITE (which turns the SIGBUS of huge pages reserved
// on another node into an error and a fallback), and then checks what it got:
// the page kind from /proc/self/smaps and the placement from move_pages
// (cnuma.PageNodes). Arena reports all of it, including memory left unbound
// because mbind was refused (seccomp) and every fallback taken with its
// reason. On Windows the arena is committed with VirtualAllocExNuma on the
// node, from large pages when the account holds "Lock pages in memory", else
// base pages; Windows only prefers the node, so the arena is reported unbound
// and QueryWorkingSetEx says where its pages are. On other systems it is a Go
// heap slice, and says so. Every kernel call about nodes goes through cnuma;
// a node the machine lacks is an error wrapping cnuma.ErrNoNode.
//
// The arena is carved into size classes (powers of two from 64 B; by default
// up to 16 MiB). Each class keeps its free buffers as slot indexes on a
// lock-free Treiber stack (internal/stack), so Get and Release are a few
// atomic operations, never block and never allocate. The arena holds no Go
// pointers; per-buffer state lives in Go slices. A Cache (Pool.NewCache) is a
// loop's private front of a few free slots per class, so that the loop's own
// Get and Release touch no shared free list.
//
// A Buffer is what a reactor loop reads into and what a handler receives:
//
//	p, err := hugepage.New(hugepage.Config{Node: 0})
//	if err != nil { ... }
//	defer p.Close()
//	b, err := p.Get(64 << 10) // ErrExhausted when the class is empty
//	if err != nil { ... }
//	n, _ := unix.Read(fd, b.Bytes())
//	payload := b.Bytes()[:n] // parse, unmask and echo in place
//	b.Retain()               // a write queue keeps the unsent tail
//	b.Release()              // the loop is done with it
//	...                      // the queue's Release gives it back
//
// A Region (Reserve) is the other kind of memory here: address space
// reserved for one large buffer and backed only where it is written (or
// about to be: Prefault backs a read's target in one call), so
// that a buffer can be sized for a whole 16 MiB frame from its header and
// still cost only the bytes that arrived. Base pages back its first 2 MiB
// and transparent huge pages the rest; Decommit gives the memory back and
// keeps the reservation for reuse.
//
// Leak checks use Pool.InUse (0 once every buffer is back) and Pool.Close,
// which refuses to unmap while buffers are out. Pool.Stats reports the arena
// and each class for a stats ticker.
package hugepage
