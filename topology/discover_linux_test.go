package topology

import (
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
// libnuma) with what the CGO_ENABLED=0 build reads from sysfs, on this machine.
// Node memory can grow while the machine runs (with deferred struct page init
// the kernel adds pages to a node's MemTotal as it initialises them), so it is
// compared within 2 % of what sysfs showed around it.
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
	if !slices.Equal(topo.NodeIDs(), sys.NodeIDs()) || !slices.Equal(topo.PUs, sys.PUs) {
		t.Fatalf("nodes %v / %v, pus %v / %v", topo.NodeIDs(), sys.NodeIDs(), topo.PUs, sys.PUs)
	}
	for i, n := range topo.Nodes {
		s := sys.Nodes[i]
		if !slices.Equal(n.CPUs, s.CPUs) || !slices.Equal(n.Distances, s.Distances) {
			t.Errorf("node %d: hwloc cpus %v distances %v; sysfs cpus %v distances %v", n.ID, n.CPUs, n.Distances, s.CPUs, s.Distances)
		}
		// Memory may grow by a 128 MiB step between the reads: hwloc's value must
		// lie within 2 % of the range sysfs showed before and after.
		lo, hi := 0.98*float64(before.Nodes[i].Memory), 1.02*float64(s.Memory)
		if m := float64(n.Memory); m < lo || m > hi {
			t.Errorf("node %d memory: hwloc %d, sysfs %d before and %d after", n.ID, n.Memory, before.Nodes[i].Memory, s.Memory)
		}
		if !slices.Equal(n.HugePages, s.HugePages) {
			t.Errorf("node %d huge pages: %+v / %+v", n.ID, n.HugePages, s.HugePages)
		}
	}
	if len(topo.Packages) != len(sys.Packages) || len(topo.Cores) != len(sys.Cores) {
		t.Errorf("packages %d / %d, cores %d / %d", len(topo.Packages), len(sys.Packages), len(topo.Cores), len(sys.Cores))
	}
	for i := range topo.Cores {
		if i < len(sys.Cores) && (topo.Cores[i].ID != sys.Cores[i].ID || !slices.Equal(topo.Cores[i].CPUs, sys.Cores[i].CPUs)) {
			t.Errorf("core %d: %+v / %+v", i, topo.Cores[i], sys.Cores[i])
		}
	}
	switch {
	case len(sys.Caches) == 0:
		// Some kernels (VMs among them) have no cache directories in
		// sysfs, while hwloc still reads the caches from CPUID: there is
		// nothing to compare with.
		t.Logf("skipped the caches: sysfs reports none, hwloc %d", len(topo.Caches))
	case len(topo.Caches) != len(sys.Caches):
		t.Errorf("caches: hwloc %+v\nsysfs %+v", topo.Caches, sys.Caches)
	}
	for i := range min(len(topo.Caches), len(sys.Caches)) {
		a, b := topo.Caches[i], sys.Caches[i]
		if a.Level != b.Level || a.Type != b.Type || a.Size != b.Size || !slices.Equal(a.CPUs, b.CPUs) {
			t.Errorf("cache %d: %+v / %+v", i, a, b)
		}
	}
	for _, s := range sys.NICs {
		h, ok := topo.NIC(s.Name)
		if !ok || h.Node != s.Node || h.PCI != s.PCI {
			t.Errorf("nic %s: hwloc %+v, sysfs %+v", s.Name, h, s)
		}
	}
}
