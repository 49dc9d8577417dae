package hugepage

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/cnuma"
	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// freeHugePages and reserveHugePages are testenv's, shared with ws's tests.
func freeHugePages(t *testing.T) int { return testenv.FreeHugePages(t) }

func reserveHugePages(t *testing.T, n int) { testenv.ReserveHugePages(t, n) }

// numaMapsLine returns the /proc/self/numa_maps line of the mapping at addr.
func numaMapsLine(t *testing.T, addr uintptr) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/numa_maps")
	if err != nil {
		t.Skipf("no numa_maps: %v", err)
	}
	prefix := strconv.FormatUint(uint64(addr), 16) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no numa_maps line for %#x", addr)
	return ""
}

func arenaAddr(p *Pool) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(p.mem))) }

// TestPageKindFallbacks checks each fallback path reports what it got and why.
func TestPageKindFallbacks(t *testing.T) {
	thp := thpSettings()
	enabled, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	thpOff := len(enabled) == 0 || strings.Contains(string(enabled), "[never]")
	t.Run("no hugetlb reserved", func(t *testing.T) {
		if freeHugePages(t) >= 2 {
			t.Skip("huge pages are free on this machine right now; the no-reservation path cannot be shown")
		}
		p := newPool(t, Config{Node: 0})
		a := p.Arena()
		if a.Kind == PageHugetlb || len(a.Fallbacks) == 0 || !strings.HasPrefix(a.Fallbacks[0], "hugetlb: ") ||
			!strings.Contains(a.Fallbacks[0], "none reserved") && !strings.Contains(a.Fallbacks[0], "needed") {
			t.Fatalf("arena %s: want a fallback from hugetlb saying how many pages it needed", a)
		}
		if strings.Contains(a.Fallbacks[0], "cannot allocate memory") {
			t.Fatalf("arena %s: a machine without huge pages is not an error: say so plainly", a)
		}
		want := PageTHP
		if thpOff {
			want = PageNormal
		}
		if a.Kind != want {
			t.Fatalf("arena %s: want %s (%s)", a, want, thp)
		}
		t.Logf("got: %s", a)
	})
	t.Run("thp", func(t *testing.T) {
		p := newPool(t, Config{Node: 0, NoHugetlb: true})
		a := p.Arena()
		if thpOff {
			if a.Kind != PageNormal || !strings.Contains(strings.Join(a.Fallbacks, ";"), "thp:") {
				t.Fatalf("THP disabled, arena %s: want normal pages and a thp fallback", a)
			}
			return
		}
		if a.Kind != PageTHP || a.HugeBytes <= 0 || a.HugeBytes > a.Size || a.PageSize != os.Getpagesize() {
			t.Fatalf("arena %s (page size %d, huge %d): want THP", a, a.PageSize, a.HugeBytes)
		}
		if arenaAddr(p)%hugeSize != 0 {
			t.Fatalf("THP arena at %#x is not 2 MiB aligned", arenaAddr(p))
		}
		t.Logf("got: %s", a)
	})
	t.Run("normal", func(t *testing.T) {
		p := newPool(t, Config{Node: 0, NoHugetlb: true, NoTHP: true})
		a := p.Arena()
		if strings.Contains(string(enabled), "[always]") {
			t.Skip("THP is 'always': base pages cannot be forced")
		}
		if a.Kind != PageNormal || a.HugeBytes != 0 || a.PageSize != os.Getpagesize() {
			t.Fatalf("arena %s: want base pages", a)
		}
		t.Logf("got: %s", a)
	})
}

// TestSIGBUSTrap puts an arena in the state of huge pages reserved on another
// node only: mmap(MAP_HUGETLB) succeeds (here through MAP_NORESERVE, since
// this machine has one node) but no page can be had where the memory is
// bound. The first touch would kill the process with SIGBUS; the pool must
// survive, fall back and say why.
func TestSIGBUSTrap(t *testing.T) {
	if freeHugePages(t) > 0 {
		t.Skip("huge pages are free right now: the populate would succeed")
	}
	p := newPool(t, Config{Node: 0, noReserve: true})
	a := p.Arena()
	if a.Kind == PageHugetlb || len(a.Fallbacks) == 0 || !strings.Contains(a.Fallbacks[0], "MADV_POPULATE_WRITE") {
		t.Fatalf("arena %s: want a fallback from hugetlb at MADV_POPULATE_WRITE", a)
	}
	b, err := p.Get(4096)
	if err != nil {
		t.Fatal(err)
	}
	b.Bytes()[0] = 1 // the touch that would have been SIGBUS
	b.Release()
	t.Logf("survived: %s", a)
}

// TestHugetlbReserved reserves huge pages for the test (as root) and checks
// that the pool gets them, that smaps, numa_maps and meminfo agree, and that
// Close gives them back.
func TestHugetlbReserved(t *testing.T) {
	classes := []Class{{64, 1024}, {64 << 10, 16}, {1 << 20, 2}} // 4 MiB: 2 pages
	need := 2
	reserveHugePages(t, need)
	before := freeHugePages(t)
	p, err := New(Config{Node: 0, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	a := p.Arena()
	if a.Kind != PageHugetlb || a.PageSize != hugeSize || a.HugeBytes != a.Size || len(a.Fallbacks) != 0 {
		t.Fatalf("arena %s (page size %d, fallbacks %q): want hugetlb", a, a.PageSize, a.Fallbacks)
	}
	if got := freeHugePages(t); got != before-need {
		t.Errorf("HugePages_Free %d -> %d, want %d pages taken", before, got, need)
	}
	line := numaMapsLine(t, arenaAddr(p))
	if !strings.Contains(line, "huge") || !strings.Contains(line, "kernelpagesize_kB=2048") {
		t.Errorf("numa_maps: %q, want a hugetlb mapping", line)
	}
	if a.Bound && !strings.Contains(line, "bind:0") {
		t.Errorf("numa_maps: %q, want bind:0", line)
	}
	if !a.Placement.OnNode(0) {
		t.Errorf("placement %s, want all on node 0", a.Placement)
	}
	for _, c := range p.Stats().Classes {
		if c.Pages != PageHugetlb || c.HugeBytes != c.Size*c.Capacity {
			t.Errorf("class %d: pages %s, %d huge bytes; want hugetlb throughout", c.Size, c.Pages, c.HugeBytes)
		}
	}
	b, err := p.Get(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Bytes() {
		b.Bytes()[i] = byte(i)
	}
	b.Release()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := freeHugePages(t); got != before {
		t.Errorf("HugePages_Free %d after Close, want %d back", got, before)
	}
	t.Logf("got: %s; numa_maps: %s", a, line)
}

// TestPlacementOnNode0 checks, independently of the pool's own report, that
// buffers of every class are on node 0 and the mapping is bound there, or
// that an unbound arena says why.
func TestPlacementOnNode0(t *testing.T) {
	p := newPool(t, Config{Node: 0})
	a := p.Arena()
	if !a.Bound {
		if a.BindErr == "" {
			t.Fatalf("arena %s: neither bound nor a reason", a)
		}
		t.Skipf("mbind refused here (reported as %q); placement cannot be asserted", a.BindErr)
	}
	if !a.Placement.OnNode(0) || a.Placement.Sampled == 0 {
		t.Fatalf("placement %s, want every sampled page on node 0", a.Placement)
	}
	for _, c := range smallClasses {
		b, err := p.Get(c.Size)
		if err != nil {
			t.Fatal(err)
		}
		node, err := cnuma.PageNode(b.Bytes())
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		if node != 0 {
			t.Errorf("class %d: buffer on node %d", c.Size, node)
		}
	}
	pol, err := cnuma.MemPolicy(p.mem)
	if err != nil {
		t.Fatal(err)
	}
	if pol.Mode != unix.MPOL_BIND || !slices.Equal(pol.Nodes, []int{0}) {
		t.Errorf("policy %+v, want MPOL_BIND to node 0", pol)
	}
	if line := numaMapsLine(t, arenaAddr(p)); !strings.Contains(line, "bind:0") {
		t.Errorf("numa_maps: %q, want bind:0", line)
	}
}

func TestNoBinding(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	a := p.Arena()
	if a.Bound || a.BindErr != "" || a.Placement.Sampled == 0 {
		t.Fatalf("arena %s: want unbound without error, placement still checked", a)
	}
	if p.Node() != -1 || p.Stats().Node != -1 {
		t.Fatal("node not reported as -1")
	}
}

func TestInvalidNode(t *testing.T) {
	for _, node := range []int{-2, 1, 63, 5000} {
		if node > 0 {
			if _, err := os.Stat(fmt.Sprintf("/sys/devices/system/node/node%d", node)); err == nil {
				continue // this machine has it
			}
		}
		_, err := New(Config{Node: node, Classes: smallClasses})
		if !errors.Is(err, cnuma.ErrNoNode) || !strings.Contains(err.Error(), fmt.Sprintf("node %d", node)) {
			t.Errorf("New(node %d): %v, want cnuma.ErrNoNode naming the node", node, err)
		}
		if node > 0 && !strings.Contains(err.Error(), "online") {
			t.Errorf("New(node %d): %v, want the online nodes listed", node, err)
		}
	}
	// Below the pool's own check, the kernel agrees: mbind to a node it does
	// not have is EINVAL.
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := cnuma.Bind(mem, 63); !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
		t.Errorf("mbind to node 63: %v, want EINVAL (or EPERM under seccomp)", err)
	}
}

func TestStatsReportPages(t *testing.T) {
	p := newPool(t, Config{Node: 0})
	b, _ := p.Get(64)
	st := p.Stats()
	b.Release()
	if st.Node != 0 || st.InUse != 1 || len(st.Classes) != len(smallClasses) {
		t.Fatalf("stats %+v", st)
	}
	for i, c := range st.Classes {
		kindOK := c.Pages == st.Arena.Kind || st.Arena.Kind == PageTHP && c.Pages == PageNormal && c.HugeBytes == 0
		if !kindOK || c.Pages == PageUnknown || c.Size != smallClasses[i].Size || c.Capacity != smallClasses[i].Count {
			t.Errorf("class %d stats %+v", i, c)
		}
	}
}

func TestVMARange(t *testing.T) {
	tests := []struct {
		line   string
		lo, hi uintptr
		ok     bool
	}{
		{"7f000000-7f400000 rw-p 00000000 00:00 0 ", 0x7f000000, 0x7f400000, true},
		{"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/x", 0x400000, 0x452000, true},
		{"AnonHugePages:      4096 kB", 0, 0, false},
		{"VmFlags: rd wr mr mw me ac sd", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := vmaRange(tt.line)
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("vmaRange(%q) = %#x, %#x, %v", tt.line, lo, hi, ok)
		}
	}
}

// TestSIGBUSTrapOtherNode is the trap for real, on a machine with two or more
// nodes (such as the qemu guest that scripts/numa-vm.sh starts): huge pages
// reserved on node 1 only; a pool bound to node 0 must fall back instead of
// dying, and a pool bound to node 1 must get those huge pages, on node 1.
func TestSIGBUSTrapOtherNode(t *testing.T) {
	const node1 = "/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"
	if _, err := os.Stat(node1); err != nil {
		t.Skip("needs a second NUMA node with 2 MiB huge pages: " + err.Error())
	}
	if os.Geteuid() != 0 {
		t.Skip("reserving huge pages needs root")
	}
	if freeHugePages(t) != 0 {
		t.Skip("huge pages are already free somewhere; the trap needs them on node 1 only")
	}
	old, err := os.ReadFile(node1)
	if err != nil {
		t.Fatal(err)
	}
	const need = 2 // smallClasses: 4 MiB
	if err := os.WriteFile(node1, []byte(strconv.Itoa(need)), 0); err != nil {
		t.Skipf("cannot reserve on node 1: %v", err)
	}
	t.Cleanup(func() { _ = os.WriteFile(node1, old, 0) })
	if got := freeHugePages(t); got < need {
		t.Skipf("node 1 reserved only %d huge pages", got)
	}

	p0 := newPool(t, Config{Node: 0})
	a0 := p0.Arena()
	if a0.Kind == PageHugetlb || len(a0.Fallbacks) == 0 || !strings.Contains(a0.Fallbacks[0], "MADV_POPULATE_WRITE") {
		t.Fatalf("node 0 arena %s: want a fallback at MADV_POPULATE_WRITE", a0)
	}
	if a0.Bound && !a0.Placement.OnNode(0) {
		t.Errorf("node 0 arena placement %s", a0.Placement)
	}
	b, err := p0.Get(4096)
	if err != nil {
		t.Fatal(err)
	}
	b.Bytes()[0] = 1
	b.Release()
	t.Logf("node 0: %s", a0)

	p1 := newPool(t, Config{Node: 1})
	a1 := p1.Arena()
	if a1.Kind != PageHugetlb || !a1.Placement.OnNode(1) {
		t.Fatalf("node 1 arena %s: want hugetlb pages on node 1", a1)
	}
	t.Logf("node 1: %s", a1)
}

// TestClassPageKinds checks the per-class page measure against the arena's:
// in a fully huge THP arena every class is huge throughout; with THP off no
// class is.
func TestClassPageKinds(t *testing.T) {
	thp := newPool(t, Config{Node: 0, NoHugetlb: true})
	st := thp.Stats()
	if st.Classes[0].HugeBytes < 0 {
		t.Skip("per-class huge pages need root (pagemap frame numbers, /proc/kpageflags)")
	}
	if st.Arena.Kind == PageTHP && st.Arena.HugeBytes == st.Arena.Size {
		for _, c := range st.Classes {
			if c.HugeBytes != c.Size*c.Capacity || c.Pages != PageTHP {
				t.Errorf("THP arena %s, class %d: %d of %d bytes huge, pages %s", st.Arena, c.Size, c.HugeBytes, c.Size*c.Capacity, c.Pages)
			}
		}
	} else {
		t.Logf("THP arena only partly huge (%s); checking bounds only", st.Arena)
		for _, c := range st.Classes {
			if c.HugeBytes > c.Size*c.Capacity {
				t.Errorf("class %d: %d huge bytes in %d", c.Size, c.HugeBytes, c.Size*c.Capacity)
			}
		}
	}
	normal := newPool(t, Config{Node: 0, NoHugetlb: true, NoTHP: true})
	if st := normal.Stats(); st.Arena.Kind == PageNormal {
		for _, c := range st.Classes {
			if c.HugeBytes != 0 || c.Pages != PageNormal {
				t.Errorf("base-page arena, class %d: %d huge bytes, pages %s", c.Size, c.HugeBytes, c.Pages)
			}
		}
	}
	// Measure directly a THP region that is not huge: a fresh anonymous
	// mapping that was populated without MADV_HUGEPAGE and THP "madvise".
	enabled, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if strings.Contains(string(enabled), "[madvise]") {
		mem, err := unix.Mmap(-1, 0, 4<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(mem)
		if got := hugeBytes(mem, &Arena{Kind: PageTHP}); got != 0 {
			t.Errorf("hugeBytes of base-page memory = %d, want 0", got)
		}
	}
}
