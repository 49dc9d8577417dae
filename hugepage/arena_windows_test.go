package hugepage

import (
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// TestArenaSaysWhatItGot: an arena on node 0 is large pages when the account
// may lock memory, else base pages with the reason in Fallbacks; either way
// it is committed with VirtualAllocExNuma, and placement is checked rather
// than assumed.
func TestArenaSaysWhatItGot(t *testing.T) {
	p, err := New(Config{Node: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := p.Arena()
	t.Logf("arena: %s", a)
	t.Logf("fallbacks: %q", a.Fallbacks)
	switch a.Kind {
	case PageHugetlb:
		if a.HugeBytes != a.Size || a.PageSize != int(windows.GetLargePageMinimum()) {
			t.Errorf("large-page arena: huge bytes %d of %d, page size %d", a.HugeBytes, a.Size, a.PageSize)
		}
	case PageNormal:
		if len(a.Fallbacks) == 0 || !strings.HasPrefix(a.Fallbacks[0], "large pages: ") {
			t.Errorf("base pages without saying why large pages were not used: %q", a.Fallbacks)
		}
		if a.HugeBytes != 0 {
			t.Errorf("base-page arena reports %d huge bytes", a.HugeBytes)
		}
	default:
		t.Fatalf("arena kind %s: want large pages (hugetlb) or normal", a.Kind)
	}
	if a.Bound || !strings.Contains(a.BindErr, "prefers node 0") {
		t.Errorf("VirtualAllocExNuma prefers a node, it does not bind: Bound %v, BindErr %q", a.Bound, a.BindErr)
	}
	switch pl := a.Placement; {
	case pl.Err != "" && testenv.WineVersion() != "":
		t.Logf("placement not checked under wine %s: %s", testenv.WineVersion(), pl.Err)
	case pl.Err != "":
		t.Errorf("placement: %s", pl.Err)
	case !pl.OnNode(0):
		t.Logf("pages not all on the preferred node: %s", pl)
	}
	// The memory is usable end to end.
	b, err := p.Get(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Bytes() {
		b.Bytes()[i] = byte(i)
	}
	b.Release()
}

// TestArenaNoHugetlbIsNormal: NoHugetlb skips large pages and says so.
func TestArenaNoHugetlbIsNormal(t *testing.T) {
	p, err := New(Config{Node: -1, NoHugetlb: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := p.Arena()
	if a.Kind != PageNormal || a.BindErr != "" {
		t.Fatalf("arena %s, bind err %q", a, a.BindErr)
	}
	if !strings.Contains(strings.Join(a.Fallbacks, ";"), "NoHugetlb") {
		t.Errorf("fallbacks %q do not say large pages were not asked for", a.Fallbacks)
	}
}

func TestArenaNoSuchNode(t *testing.T) {
	if _, err := New(Config{Node: 63}); err == nil {
		t.Fatal("an arena on node 63 of this machine")
	}
}

// TestArenaLargePages needs an account holding "Lock pages in memory"; it
// skips, saying which is missing, elsewhere.
func TestArenaLargePages(t *testing.T) {
	if v := testenv.WineVersion(); v != "" {
		t.Skipf("wine %s lacks large pages: SeLockMemoryPrivilege is never enabled and VirtualAlloc(MEM_LARGE_PAGES) fails with ERROR_INVALID_PARAMETER", v)
	}
	if err := lockMemoryPrivilege(); err != nil {
		t.Skipf("this account cannot use large pages: %v", err)
	}
	p, err := New(Config{Node: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if a := p.Arena(); a.Kind != PageHugetlb {
		t.Fatalf("privilege held but arena is %s: %q", a, a.Fallbacks)
	}
}

// TestArenaAligned: arenas start on a huge page boundary, as the pool's
// layout needs, though VirtualAlloc itself aligns to 64 KiB only; several in
// a row, so that a lucky first address does not hide it.
func TestArenaAligned(t *testing.T) {
	for i := range 8 {
		p, err := New(Config{Node: -1, NoHugetlb: true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Get(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if at := uintptr(unsafe.Pointer(&b.Bytes()[0])); at%(1<<20) != 0 {
			t.Errorf("pool %d: 1 MiB buffer at %#x", i, at)
		}
		b.Release()
		defer p.Close()
	}
}
