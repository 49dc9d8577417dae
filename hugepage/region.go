package hugepage

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Every platform file defines the region hooks:
//
//	(r *Region) reserve(size int) error   set r.mem to size bytes of address
//	                                      space (size a multiple of 2 MiB)
//	(r *Region) commit(n int) error       make r.mem[:n] writable
//	(r *Region) backed(n int) int         memory held once r.mem[:n] was written
//	(r *Region) decommit(from int) error  give back r.mem[from:]'s memory
//	(r *Region) free(mem []byte) error    release the reservation
//
// region_linux.go maps with MAP_NORESERVE and madvise, region_windows.go
// uses VirtualAlloc, region_other.go the Go heap.

// Region is address space reserved for one large buffer (a message being
// reassembled, a long write queue) whose memory is backed only where it has
// been written: reserving 16 MiB costs no memory, writing 100 KiB into it
// costs about 100 KiB. A server that sizes a buffer from a frame header can
// so reserve the whole frame at once (no growing, no copying) and still pay
// only for the bytes that actually arrived.
//
// The first RegionPlainBytes of a region use base pages, so that a writer
// that stops early holds at most a page beyond what it wrote; past them the
// region asks for transparent huge pages (Linux), which make faulting in a
// large buffer about a hundred times cheaper than base pages do (measured in
// docs/MEMORY.md) at the price of backing memory in 2 MiB steps. Backed says
// how much memory a given length holds, for budgets.
//
// Platforms: Linux maps anonymous memory with MAP_NORESERVE, which the
// kernel backs page by page on first touch (placed on the node of the CPU
// that touches it, the loop's); Windows reserves with VirtualAlloc
// (MEM_RESERVE) and Commit commits in RegionCommitStep steps (MEM_COMMIT),
// preferring the region's node; elsewhere a region is a Go heap slice.
//
// A region holds no Go pointers. Its methods other than Retain and Release
// are for one goroutine at a time (the owner); Retain and Release count
// references atomically from any goroutine, and whoever drops the last one
// decides what to do with it (Free, or keep it for reuse).
type Region struct {
	mem       []byte // the reservation; len == cap
	node      int    // preferred node (Windows); -1 none
	huge      bool   // past RegionPlainBytes the kernel was asked for huge pages
	committed int    // bytes committed from the start (Windows), backed by Prefault (Linux)
	refs      atomic.Int32
	freed     bool
}

const (
	// RegionPlainBytes is the start of a region left to base pages.
	RegionPlainBytes = hugeSize
	// RegionCommitStep is how much Commit commits at a time where commits
	// are explicit (Windows).
	RegionCommitStep = 64 << 10
)

// ErrRegion is wrapped by Reserve's errors.
var ErrRegion = errors.New("hugepage: cannot reserve a region")

// Reserve reserves size bytes (rounded up to 2 MiB) of address space,
// preferring node (-1: any) where the platform lets us say. The region has
// one reference. No memory is used until bytes are written (after Commit).
func Reserve(size, node int) (*Region, error) {
	if size <= 0 || size > maxArena {
		return nil, fmt.Errorf("%w: size %d out of range", ErrRegion, size)
	}
	r := &Region{node: node}
	if err := r.reserve(roundUp(size, hugeSize)); err != nil {
		return nil, fmt.Errorf("%w: %d bytes: %w", ErrRegion, size, err)
	}
	r.refs.Store(1)
	return r, nil
}

// Cap is the size of the reservation.
func (r *Region) Cap() int { return len(r.mem) }

// Bytes is the whole reservation; only its first Commit-ed bytes may be
// touched. Valid until Free.
func (r *Region) Bytes() []byte { return r.mem }

// Commit makes the first n bytes writable; it must be called before
// writing past what was committed before. On Linux it does nothing (the
// kernel backs pages on first touch); on Windows it commits in
// RegionCommitStep steps and fails when the system's commit limit is
// reached.
func (r *Region) Commit(n int) error {
	if n > len(r.mem) {
		return fmt.Errorf("hugepage: commit %d bytes of a %d-byte region", n, len(r.mem))
	}
	return r.commit(n)
}

// Prefault backs the pages of the first n bytes (committed) that are not
// backed yet, before something writes there: on Linux with one
// MADV_POPULATE_WRITE, where the kernel would otherwise fault each page in
// as it is first written, and a fault costs many times more than
// populating the page in a batch (docs/MEMORY.md has the figures). A hint:
// the pages are backed as written where the platform lacks it, or when it
// fails (the error says why); nothing past roundUp(n, page size) is
// backed, so in the huge-page part a write backs no more than it would
// have.
func (r *Region) Prefault(n int) error {
	if n > len(r.mem) {
		return fmt.Errorf("hugepage: prefault %d bytes of a %d-byte region", n, len(r.mem))
	}
	return r.prefault(n)
}

// Backed is how many bytes of memory the region holds once its first n
// bytes were written: n rounded up to the page size within
// RegionPlainBytes, and to whole huge pages past them when the region asked
// for huge pages (the kernel may back them with base pages after all; the
// figure is then an upper bound). Budgets charge this, not n.
func (r *Region) Backed(n int) int {
	if n <= 0 {
		return 0
	}
	return min(r.backed(n), len(r.mem))
}

// Decommit gives back the memory behind the region from byte from (rounded
// up to what Backed counts in) to its end, keeping the reservation: the
// bytes there read as zero afterwards (Linux) or must be committed again
// (Windows). Decommit(0) empties the region; Backed(from) is then what it
// holds.
func (r *Region) Decommit(from int) error {
	if from = r.Backed(from); from >= len(r.mem) {
		return nil
	}
	return r.decommit(from)
}

// Retain adds a reference, for a second holder of the region's bytes. On a
// region whose last reference was dropped, it re-arms the region for the
// caller that kept it.
func (r *Region) Retain() { r.refs.Add(1) }

// Release drops a reference and reports whether it was the last: then the
// caller owns the region alone and must Free it or keep it for reuse.
// Any goroutine may call it.
func (r *Region) Release() bool {
	n := r.refs.Add(-1)
	if n < 0 {
		panic("hugepage: Release of a Region without a reference")
	}
	return n == 0
}

// Free gives the address space and any memory behind it back. The region
// and every slice of it are dead afterwards; Free twice panics.
func (r *Region) Free() error {
	if r.freed {
		panic("hugepage: Free of a Region twice")
	}
	r.freed = true
	mem := r.mem
	r.mem = nil
	return r.free(mem)
}
