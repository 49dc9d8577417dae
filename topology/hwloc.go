package topology

import (
	"fmt"
	"slices"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// LoadSynthetic builds the topology hwloc makes of a synthetic description, such
// as "pack:2 numa:1 l3:1 core:4 pu:2" (two nodes, 16 PUs, node 0 = PUs 0-7).
// Synthetic topologies have no distances: they are assumed 10 local, 20 remote,
// and said so in Notes. It needs hwloc (linux and cgo), else cnuma.ErrNoHwloc.
func LoadSynthetic(desc string) (*Topology, error) {
	h, err := cnuma.LoadHwloc(cnuma.HwlocInput{Synthetic: desc})
	if err != nil {
		return nil, fmt.Errorf("topology: synthetic %q: %w", desc, err)
	}
	return FromHwloc(h, "synthetic")
}

// LoadXML builds the topology of an hwloc XML export ("lstopo --of xml"), I/O
// devices included. It needs hwloc (linux and cgo), else cnuma.ErrNoHwloc.
func LoadXML(path string) (*Topology, error) {
	h, err := cnuma.LoadHwloc(cnuma.HwlocInput{XMLFile: path})
	if err != nil {
		return nil, fmt.Errorf("topology: xml %s: %w", path, err)
	}
	return FromHwloc(h, "xml")
}

// FromHwloc turns an hwloc snapshot into a Topology labelled source. Free memory
// is unknown to hwloc (Free -1); huge page pools are the node's page types other
// than the smallest (base) page.
func FromHwloc(h *cnuma.HwlocTopology, source string) (*Topology, error) {
	t := &Topology{Source: source, CanPin: true, PUs: slices.Clone(h.PUs)}
	for _, hn := range h.Nodes {
		if hn.OSIndex < 0 {
			return nil, fmt.Errorf("topology: hwloc numa node without an os index")
		}
		n := Node{ID: hn.OSIndex, CPUs: slices.Clone(hn.CPUs), Memory: hn.Memory, Free: -1}
		for i, pt := range hn.PageTypes {
			if i == 0 && len(hn.PageTypes) > 0 && pt.SizeKB <= 64 {
				continue // the base page
			}
			n.HugePages = append(n.HugePages, HugePages{SizeKB: pt.SizeKB, Total: pt.Count, Free: -1})
		}
		t.Nodes = append(t.Nodes, n)
	}
	for _, p := range h.Packages {
		t.Packages = append(t.Packages, Package{ID: p.OSIndex, CPUs: p.CPUs})
	}
	for _, c := range h.Cores {
		t.Cores = append(t.Cores, Core{Package: c.Package, ID: c.OSIndex, CPUs: c.CPUs})
	}
	for _, c := range h.Caches {
		t.Caches = append(t.Caches, CPUCache{Level: c.Level, Type: c.Type, Size: c.Size, CPUs: c.CPUs})
	}
	for _, d := range h.NetDevices {
		t.NICs = append(t.NICs, NIC{Name: d.Name, PCI: d.PCI, Node: d.Node, LocalCPUs: d.LocalCPUs})
	}
	t.normalize()
	if err := t.hwlocDistances(h); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Topology) hwlocDistances(h *cnuma.HwlocTopology) error {
	if len(h.Distances) == 0 {
		t.assumeDistances("hwloc has no distance matrix")
		return nil
	}
	col := make(map[int]int, len(h.DistanceNodes))
	for i, id := range h.DistanceNodes {
		col[id] = i
	}
	for i := range t.Nodes {
		row := make([]int, len(t.Nodes))
		from, ok := col[t.Nodes[i].ID]
		if !ok {
			return fmt.Errorf("topology: hwloc distances miss node %d", t.Nodes[i].ID)
		}
		for j, to := range t.Nodes {
			k, ok := col[to.ID]
			if !ok {
				return fmt.Errorf("topology: hwloc distances miss node %d", to.ID)
			}
			row[j] = h.Distances[from][k]
		}
		t.Nodes[i].Distances = row
	}
	return nil
}
