package topology

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// FromSysFS reads a Linux sysfs tree rooted at root ("" = /sys): what a build
// without cgo discovers, and what tests feed with fake trees
// (testdata/sysfs/<case>). Allowed is left nil and CanPin true; Discover fills
// in the process's own mask.
func FromSysFS(root string) (*Topology, error) {
	s := cnuma.SysFS{Root: root}
	t := &Topology{Source: "sysfs", CanPin: true}
	var err error
	if t.PUs, err = s.OnlineCPUs(); err != nil {
		return nil, err
	}
	if err := t.sysfsNodes(s); err != nil {
		return nil, err
	}
	if err := t.sysfsCPUs(s); err != nil {
		return nil, err
	}
	nics, err := s.NetDevices()
	if err != nil {
		return nil, err
	}
	for _, d := range nics {
		t.NICs = append(t.NICs, NIC{Name: d.Name, PCI: d.PCI, Node: d.Node, LocalCPUs: d.LocalCPUs})
	}
	t.normalize()
	return t, nil
}

func (t *Topology) sysfsNodes(s cnuma.SysFS) error {
	ids, err := s.Nodes()
	if errors.Is(err, cnuma.ErrNoNUMA) {
		// A kernel built without NUMA: one node holds everything.
		t.Nodes = []Node{{ID: 0, CPUs: t.PUs, Free: -1, Distances: []int{10}}}
		t.Notes = append(t.Notes, "sysfs has no node directory (kernel without NUMA): one node 0 assumed, memory unknown")
		return nil
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		n, err := sysfsNode(s, id)
		if err != nil {
			return err
		}
		if len(n.Distances) != len(ids) {
			return fmt.Errorf("topology: sysfs node%d/distance has %d columns for %d nodes", id, len(n.Distances), len(ids))
		}
		t.Nodes = append(t.Nodes, n)
	}
	return nil
}

func sysfsNode(s cnuma.SysFS, id int) (Node, error) {
	n := Node{ID: id}
	var err error
	if n.CPUs, err = s.NodeCPUs(id); err != nil {
		return n, err
	}
	mem, err := s.NodeMemory(id)
	if err != nil {
		return n, err
	}
	n.Memory, n.Free = mem.Total, int64(mem.Free)
	if n.Distances, err = s.NodeDistances(id); err != nil {
		return n, err
	}
	hp, err := s.NodeHugePages(id)
	if err != nil {
		return n, err
	}
	for _, h := range hp {
		n.HugePages = append(n.HugePages, HugePages{SizeKB: h.SizeKB, Total: h.Total, Free: int64(h.Free)})
	}
	return n, nil
}

// sysfsCPUs builds packages, cores and cache instances from the online CPUs;
// an offline CPU has no topology directory.
func (t *Topology) sysfsCPUs(s cnuma.SysFS) error {
	pkgs := map[int][]int{}
	type coreKey struct{ pkg, core int }
	cores := map[coreKey][]int{}
	caches := map[string]CPUCache{}
	for _, c := range t.PUs {
		ct, err := s.CPUTopology(c)
		if err != nil {
			return err
		}
		pkgs[ct.Package] = append(pkgs[ct.Package], c)
		k := coreKey{ct.Package, ct.Core}
		cores[k] = append(cores[k], c)
		cs, err := s.CPUCaches(c)
		if err != nil {
			return err
		}
		for _, ci := range cs {
			// One instance per distinct (level, type, sharing CPUs).
			key := fmt.Sprintf("%d/%s/%s", ci.Level, ci.Type, cnuma.FormatCPUList(ci.CPUs))
			caches[key] = CPUCache{Level: ci.Level, Type: ci.Type, Size: ci.Size, CPUs: onlineOnly(ci.CPUs, t.PUs)}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(pkgs)) {
		t.Packages = append(t.Packages, Package{ID: id, CPUs: pkgs[id]})
	}
	for k, cpus := range cores {
		t.Cores = append(t.Cores, Core{Package: k.pkg, ID: k.core, CPUs: cpus})
	}
	for _, c := range caches {
		t.Caches = append(t.Caches, c)
	}
	return nil
}

func onlineOnly(cpus, online []int) []int {
	var out []int
	for _, c := range cpus {
		if contains(online, c) {
			out = append(out, c)
		}
	}
	return out
}
