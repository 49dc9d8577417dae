//go:build !linux && !windows

package hugepage

import "os"

// mapArena takes the arena from the Go heap: this platform has no arena code.
// The Arena reports PageGoHeap and no binding, so nothing pretends otherwise.
func mapArena(size, node int, _ mapOptions) ([]byte, Arena, error) {
	a := Arena{Node: node, Size: size}
	a.Kind = PageGoHeap
	a.PageSize = os.Getpagesize()
	a.Fallbacks = []string{"hugetlb, thp, mmap: no arena code for this platform; using the Go heap"}
	if node >= 0 {
		a.BindErr = "no node binding on this platform"
	}
	a.Placement = Placement{Err: "placement is not checked on this platform"}
	return make([]byte, size), a, nil
}

func unmapArena([]byte, *Arena) error { return nil }

// hugeBytes is -1: the Go heap says nothing about its pages.
func hugeBytes([]byte, *Arena) int { return -1 }
