package topology

import (
	"slices"
	"strings"
	"testing"
)

// fakeTrees are the fake sysfs trees under cnuma/testdata/sysfs that read
// as a whole machine: two nodes, no NUMA directory (a kernel without
// NUMA), offline CPUs, a memory-only node, no cache directories (some
// VMs).
var fakeTrees = []string{"two-node", "no-numa", "offline", "memless", "no-cache"}

// TestCompareSourcesOnFakeMachines runs TestDiscoverAgreesWithSysFS's
// comparison on machines of other shapes than this one, any of which a CI
// machine may be: for each fake tree, sysfs's view against a copy of
// itself agrees; against hwloc's view as it is on such a machine (caches
// read from CPUID where sysfs has no cache directories) it agrees and says
// what it skipped; and a real disagreement (a CPU in another node, a core
// split, a node's memory, a cache's size) is reported, never skipped.
func TestCompareSourcesOnFakeMachines(t *testing.T) {
	for _, name := range fakeTrees {
		t.Run(name, func(t *testing.T) {
			sys := fakeMachine(t, name)
			if diffs, skipped := compareSources(clone(sys), sys, sys); len(diffs) > 0 {
				t.Fatalf("a topology disagrees with itself: %q", diffs)
			} else if len(sys.Caches) == 0 && !slices.ContainsFunc(skipped, func(s string) bool { return strings.HasPrefix(s, "the caches") }) {
				t.Fatalf("no caches in sysfs, and the comparison did not say it skipped them: %q", skipped)
			}

			// hwloc on a machine whose sysfs has no cache directories still
			// reports the caches (from CPUID): not a disagreement.
			hw := clone(sys)
			hw.Caches = append(hw.Caches, CPUCache{Level: 3, Type: "Unified", Size: 32 << 20, CPUs: slices.Clone(sys.PUs)})
			diffs, skipped := compareSources(hw, sys, sys)
			if len(sys.Caches) == 0 {
				if len(diffs) > 0 || len(skipped) == 0 {
					t.Fatalf("hwloc caches where sysfs has none: diffs %q, skipped %q", diffs, skipped)
				}
				t.Logf("skipped: %s", skipped)
			} else if len(diffs) == 0 {
				t.Fatal("an extra cache where sysfs has caches went unnoticed")
			}

			for _, m := range []struct {
				what   string
				change func(*Topology) bool // false: not applicable to this machine
			}{
				{"a node's memory", func(t *Topology) bool { t.Nodes[0].Memory *= 2; return t.Nodes[0].Memory > 0 }},
				{"a core's CPUs", func(t *Topology) bool {
					if len(t.Cores) == 0 || len(t.Cores[0].CPUs) < 2 {
						return false
					}
					t.Cores[0].CPUs = t.Cores[0].CPUs[:1]
					return true
				}},
				{"a node's CPUs", func(t *Topology) bool {
					if len(t.Nodes[0].CPUs) < 2 {
						return false
					}
					t.Nodes[0].CPUs = t.Nodes[0].CPUs[1:]
					return true
				}},
				{"a cache's size", func(t *Topology) bool {
					if len(t.Caches) == 0 {
						return false
					}
					t.Caches[0].Size++
					return true
				}},
			} {
				hw := clone(sys)
				if !m.change(hw) {
					continue
				}
				if diffs, _ := compareSources(hw, sys, sys); len(diffs) == 0 {
					t.Errorf("%s differs, and the comparison found nothing", m.what)
				}
			}
		})
	}
}

// TestFromSysFSNoCache: a kernel without cpu*/cache directories gives a
// topology without caches and everything else intact.
func TestFromSysFSNoCache(t *testing.T) {
	topo := fakeMachine(t, "no-cache")
	full := fakeMachine(t, "two-node")
	if len(topo.Caches) != 0 {
		t.Fatalf("caches %+v from a tree that has none", topo.Caches)
	}
	if !slices.Equal(topo.NodeIDs(), full.NodeIDs()) || !slices.Equal(topo.PUs, full.PUs) ||
		len(topo.Cores) != len(full.Cores) || len(topo.Packages) != len(full.Packages) || len(topo.NICs) != len(full.NICs) {
		t.Fatalf("no-cache %+v\nwant two-node without caches %+v", topo, full)
	}
	if _, err := topo.Plan(Auto, 0); err != nil {
		t.Fatal(err)
	}
}

// clone copies t deeply enough for the comparisons above to change it.
func clone(t *Topology) *Topology {
	c := *t
	c.Nodes = slices.Clone(t.Nodes)
	for i := range c.Nodes {
		c.Nodes[i].CPUs = slices.Clone(t.Nodes[i].CPUs)
		c.Nodes[i].Distances = slices.Clone(t.Nodes[i].Distances)
		c.Nodes[i].HugePages = slices.Clone(t.Nodes[i].HugePages)
	}
	c.Cores = slices.Clone(t.Cores)
	for i := range c.Cores {
		c.Cores[i].CPUs = slices.Clone(t.Cores[i].CPUs)
	}
	c.Caches = slices.Clone(t.Caches)
	c.PUs = slices.Clone(t.PUs)
	c.Packages = slices.Clone(t.Packages)
	c.NICs = slices.Clone(t.NICs)
	return &c
}
