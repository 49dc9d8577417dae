package topology

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDiscover(t *testing.T) {
	topo, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) == 0 || len(topo.PUs) == 0 || len(topo.Allowed) != set.Count() || !topo.CanPin {
		t.Fatalf("Discover() = %+v", topo)
	}
	p, err := topo.Plan(Auto, 0)
	if err != nil {
		t.Fatal(err)
	}
	usable := 0
	for _, c := range topo.Allowed {
		if slices.Contains(topo.PUs, c) {
			usable++
		}
	}
	if len(p.Loops) != usable {
		t.Fatalf("auto plan has %d loops for %d usable cpus: %+v", len(p.Loops), usable, p)
	}
	for _, l := range p.Loops {
		if !set.IsSet(l.CPU) {
			t.Fatalf("loop on cpu %d outside the affinity mask", l.CPU)
		}
	}
}

// TestDiscoverUnderTaskset narrows this thread's mask to one CPU, as
// "taskset -c N" does for a process, and expects a one-loop plan on that CPU.
func TestDiscoverUnderTaskset(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for c := len(old)*64 - 1; c >= 0; c-- {
		if old.IsSet(c) {
			cpu = c // the highest allowed CPU, so that CPU 0 is not a lucky default
			break
		}
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Skipf("cannot narrow affinity here: %v", err)
	}
	topo, err := Discover()
	if err := unix.SchedSetaffinity(0, &old); err != nil {
		t.Fatalf("restoring affinity: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := topo.Plan(Auto, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Loops) != 1 || p.Loops[0].CPU != cpu {
		t.Fatalf("plan under a one-cpu mask (cpu %d): %+v", cpu, p.Loops)
	}
	p, err = topo.Plan(Auto, 3)
	if err != nil || len(p.Loops) != 3 || p.Loops[2].CPU != cpu {
		t.Fatalf("three workers on one cpu: %+v, %v", p, err)
	}
}

// TestDiscoverAgreesWithSysFS compares what the cgo build discovers (hwloc and
// libnuma) with what the CGO_ENABLED=0 build reads from sysfs, on this machine,
// with compareSources: where one source has nothing to say (no cache
// directories in sysfs, say), it compares what both report and logs what it
// skipped. TestCompareSourcesOnFakeMachines runs the same comparison on the
// fake sysfs trees, so that a machine of another shape cannot surprise it.
func TestDiscoverAgreesWithSysFS(t *testing.T) {
	before, err := FromSysFS("")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	if topo.Source != "hwloc" {
		t.Skipf("Discover used %s (no hwloc in this build): nothing to compare", topo.Source)
	}
	sys, err := FromSysFS("")
	if err != nil {
		t.Fatal(err)
	}
	diffs, skipped := compareSources(topo, before, sys)
	for _, s := range skipped {
		t.Logf("skipped: %s", s)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

// compareSources lists where hw (hwloc's view) disagrees with sys (sysfs's,
// read after hw; before is sysfs read before hw), and what it did not
// compare because one source reports nothing there. Node memory can grow
// while the machine runs (with deferred struct page init the kernel adds
// pages to a node's MemTotal as it initialises them), so it is compared
// within 2 % of what sysfs showed around hwloc's read.
func compareSources(hw, before, sys *Topology) (diffs, skipped []string) {
	differ := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	if !slices.Equal(hw.NodeIDs(), sys.NodeIDs()) || !slices.Equal(hw.PUs, sys.PUs) {
		differ("nodes %v / %v, pus %v / %v", hw.NodeIDs(), sys.NodeIDs(), hw.PUs, sys.PUs)
		return diffs, skipped
	}
	for i, n := range hw.Nodes {
		s := sys.Nodes[i]
		if !slices.Equal(n.CPUs, s.CPUs) || !slices.Equal(n.Distances, s.Distances) {
			differ("node %d: hwloc cpus %v distances %v; sysfs cpus %v distances %v", n.ID, n.CPUs, n.Distances, s.CPUs, s.Distances)
		}
		if lo, hi := 0.98*float64(before.Nodes[i].Memory), 1.02*float64(s.Memory); float64(n.Memory) < lo || float64(n.Memory) > hi {
			differ("node %d memory: hwloc %d, sysfs %d before and %d after", n.ID, n.Memory, before.Nodes[i].Memory, s.Memory)
		}
		if !slices.Equal(n.HugePages, s.HugePages) {
			differ("node %d huge pages: %+v / %+v", n.ID, n.HugePages, s.HugePages)
		}
	}
	if len(hw.Packages) != len(sys.Packages) || len(hw.Cores) != len(sys.Cores) {
		differ("packages %d / %d, cores %d / %d", len(hw.Packages), len(sys.Packages), len(hw.Cores), len(sys.Cores))
	}
	for i := range min(len(hw.Cores), len(sys.Cores)) {
		if hw.Cores[i].ID != sys.Cores[i].ID || !slices.Equal(hw.Cores[i].CPUs, sys.Cores[i].CPUs) {
			differ("core %d: %+v / %+v", i, hw.Cores[i], sys.Cores[i])
		}
	}
	switch {
	case len(sys.Caches) == 0:
		// Some kernels (VMs among them) have no cache directories in sysfs,
		// while hwloc still reads the caches from CPUID.
		skipped = append(skipped, fmt.Sprintf("the caches: sysfs reports none, hwloc %d", len(hw.Caches)))
	case len(hw.Caches) != len(sys.Caches):
		differ("caches: hwloc %+v\nsysfs %+v", hw.Caches, sys.Caches)
	default:
		for i := range hw.Caches {
			a, b := hw.Caches[i], sys.Caches[i]
			if a.Level != b.Level || a.Type != b.Type || a.Size != b.Size || !slices.Equal(a.CPUs, b.CPUs) {
				differ("cache %d: %+v / %+v", i, a, b)
			}
		}
	}
	for _, s := range sys.NICs {
		if h, ok := hw.NIC(s.Name); !ok || h.Node != s.Node || h.PCI != s.PCI {
			differ("nic %s: hwloc %+v, sysfs %+v", s.Name, h, s)
		}
	}
	return diffs, skipped
}
