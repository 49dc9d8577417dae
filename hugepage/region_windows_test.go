package hugepage

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// state is the VirtualQuery state of the page holding p: MEM_COMMIT,
// MEM_RESERVE or MEM_FREE.
func state(t *testing.T, p *byte) uint32 {
	t.Helper()
	var mbi windows.MemoryBasicInformation
	if err := windows.VirtualQuery(uintptr(unsafe.Pointer(p)), &mbi, unsafe.Sizeof(mbi)); err != nil {
		t.Fatal(err)
	}
	return mbi.State
}

// TestRegionCommitsInSteps: a reservation is only reserved; Commit commits
// in RegionCommitStep steps from the start and Decommit gives the tail
// back.
func TestRegionCommitsInSteps(t *testing.T) {
	r := newRegion(t, 8<<20)
	b := r.Bytes()
	if s := state(t, &b[0]); s != windows.MEM_RESERVE {
		t.Fatalf("fresh region: state %#x, want MEM_RESERVE", s)
	}
	if err := r.Commit(100 << 10); err != nil {
		t.Fatal(err)
	}
	step := RegionCommitStep
	if s := state(t, &b[2*step-1]); s != windows.MEM_COMMIT {
		t.Fatalf("inside the commit: state %#x", s)
	}
	if s := state(t, &b[2*step]); s != windows.MEM_RESERVE {
		t.Fatalf("past the commit: state %#x, want MEM_RESERVE", s)
	}
	if got := r.Backed(100 << 10); got != 2*step {
		t.Fatalf("Backed = %d, want %d", got, 2*step)
	}
	b[100<<10-1] = 1
	if err := r.Decommit(step); err != nil {
		t.Fatal(err)
	}
	if s := state(t, &b[step]); s != windows.MEM_RESERVE {
		t.Fatalf("after Decommit: state %#x, want MEM_RESERVE", s)
	}
	if s := state(t, &b[0]); s != windows.MEM_COMMIT {
		t.Fatalf("before the Decommit: state %#x, want MEM_COMMIT", s)
	}
}
