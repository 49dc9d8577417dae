package hugepage

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// Every platform file defines the three arena hooks:
//
//	mapArena(size, node int, o mapOptions) ([]byte, Arena, error)
//		maps size bytes (a multiple of hugeSize) of zeroed, writable memory
//		that holds no Go pointers, bound to node when node >= 0 (New has
//		already checked it with checkNode), with every page already faulted
//		in (so that a bad binding fails here and not on first touch), and
//		fills Arena with what it actually got, checked rather than assumed.
//		An error means no memory is mapped.
//	unmapArena(mem []byte, a *Arena) error
//		gives mem back to the system; mem is never used again.
//	hugeBytes(part []byte, a *Arena) int
//		reports how many bytes of part (a slice of the arena a describes)
//		huge pages back right now, or -1 when that cannot be told (so that a
//		size class can report its own page kind, not only the arena's).
//
// arena_linux.go maps with mmap (hugetlb, then THP, then base pages), binds
// with cnuma.Bind and checks with /proc/self/smaps and cnuma.PageNodes;
// arena_windows.go uses VirtualAllocExNuma (large pages when the account may
// lock memory); arena_other.go falls back to the Go heap.

// hugeSize is the huge page size arenas are sized and aligned for (x86-64 and
// arm64 with 4 KiB base pages).
const hugeSize = 2 << 20

// mapOptions are the page kinds New may try, from Config.
type mapOptions struct {
	noHugetlb bool
	noTHP     bool
	// noReserve maps hugetlb memory with MAP_NORESERVE, so that mmap succeeds
	// without a reservation and only the first touch fails: the same state as
	// huge pages reserved on another node only (the SIGBUS trap). Tests use it.
	noReserve bool
}

// PageKind says what kind of page backs an arena.
type PageKind uint8

const (
	// PageUnknown is the zero value: nothing was checked.
	PageUnknown PageKind = iota
	// PageHugetlb is memory from the explicit huge page reservation
	// (vm.nr_hugepages, MAP_HUGETLB): never split, never swapped.
	PageHugetlb
	// PageTHP is anonymous memory that the kernel backed, at least partly,
	// with transparent huge pages after MADV_HUGEPAGE; Arena.HugeBytes says how
	// much.
	PageTHP
	// PageNormal is base pages (4 KiB on x86-64).
	PageNormal
	// PageGoHeap is a Go heap slice, used where no arena code exists for the
	// platform: not bound, not huge, but still never scanned for pointers
	// because it holds none.
	PageGoHeap
)

// String returns "hugetlb", "thp", "normal", "goheap" or "unknown".
func (k PageKind) String() string {
	switch k {
	case PageHugetlb:
		return "hugetlb"
	case PageTHP:
		return "thp"
	case PageNormal:
		return "normal"
	case PageGoHeap:
		return "goheap"
	}
	return "unknown"
}

// Arena says what memory a pool got, as checked after mapping it.
type Arena struct {
	// Node is the node asked for; -1 means no binding was asked for.
	Node int
	// Size is the number of bytes mapped.
	Size int
	// Kind is the page kind found backing the arena.
	Kind PageKind
	// PageSize is the kernel page size of the mapping (KernelPageSize in
	// smaps): 2 MiB for hugetlb, the base page size otherwise, THP included.
	PageSize int
	// HugeBytes is how many bytes huge pages back: Size for hugetlb, the
	// mapping's AnonHugePages for THP, 0 otherwise. smaps counts per mapping,
	// and the kernel may merge our mapping with an adjacent one of the same
	// kind, so for THP this is an upper bound clamped to Size.
	HugeBytes int
	// Bound reports that mbind accepted the node binding and, where the
	// policy can be read back, that the mapping's policy is MPOL_BIND to Node.
	Bound bool
	// BindErr says why memory asked for on a node is not bound (for example
	// "mbind: operation not permitted" under a seccomp profile); empty when
	// Bound or when Node is -1.
	BindErr string
	// Placement is where the pages actually are.
	Placement Placement
	// Fallbacks lists, in the order tried, why each better page kind was not
	// used, e.g. "hugetlb: none reserved (vm.nr_hugepages is 0; 38 pages of
	// 2 MiB would back this pool)".
	Fallbacks []string
}

// Placement is the result of asking the kernel where sampled pages of an
// arena live (move_pages with no target nodes, or get_mempolicy with
// MPOL_F_NODE|MPOL_F_ADDR when move_pages is refused).
type Placement struct {
	// Method names the call used, or is empty when placement was not checked.
	Method string
	// Sampled is how many pages were asked about.
	Sampled int
	// Nodes counts sampled pages per node.
	Nodes map[int]int
	// Err says why placement could not be checked, or is empty.
	Err string
}

// OnNode reports whether every sampled page is on node.
func (p Placement) OnNode(node int) bool {
	return p.Sampled > 0 && p.Nodes[node] == p.Sampled
}

// String formats the placement as "move_pages: 16/16 on node 0".
func (p Placement) String() string {
	if p.Err != "" {
		return "not checked: " + p.Err
	}
	if p.Method == "" {
		return "not checked"
	}
	nodes := make([]int, 0, len(p.Nodes))
	for n := range p.Nodes {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = fmt.Sprintf("%d/%d on node %d", p.Nodes[n], p.Sampled, n)
	}
	return p.Method + ": " + strings.Join(parts, ", ")
}

// String summarises the arena in one line for logs and reports.
func (a Arena) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d MiB %s", a.Size>>20, a.Kind)
	if a.Kind == PageTHP {
		fmt.Fprintf(&b, " (%d MiB huge)", a.HugeBytes>>20)
	}
	switch {
	case a.Node < 0:
		b.WriteString(", no node binding asked")
	case a.Bound:
		fmt.Fprintf(&b, ", bound to node %d", a.Node)
	default:
		fmt.Fprintf(&b, ", NOT bound to node %d: %s", a.Node, a.BindErr)
	}
	fmt.Fprintf(&b, ", placement %s", a.Placement)
	for _, f := range a.Fallbacks {
		fmt.Fprintf(&b, "; fell back from %s", f)
	}
	return b.String()
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// checkNode returns an error wrapping cnuma.ErrNoNode unless node is -1 (no
// binding) or one of this machine's nodes (cnuma.Nodes). A kernel without NUMA
// has node 0 only, which holds all memory. Where cnuma has no NUMA interface
// at all, any node is accepted: nothing is bound there, and Arena says so.
func checkNode(node int) error {
	switch {
	case node == -1:
		return nil
	case node < -1:
		return fmt.Errorf("hugepage: node %d: %w", node, cnuma.ErrNoNode)
	}
	nodes, err := cnuma.Nodes()
	switch {
	case errors.Is(err, cnuma.ErrUnsupported):
		return nil
	case errors.Is(err, cnuma.ErrNoNUMA):
		nodes = []int{0}
	case err != nil:
		return fmt.Errorf("hugepage: node %d: %w", node, err)
	}
	if !slices.Contains(nodes, node) {
		return fmt.Errorf("hugepage: node %d (online: %s): %w", node, cnuma.FormatCPUList(nodes), cnuma.ErrNoNode)
	}
	return nil
}
