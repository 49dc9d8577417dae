package topology

import (
	"errors"
	"slices"
)

// Sentinel errors of the package; wrapped errors add the details. A -numa
// node that the machine does not have is an error wrapping cnuma.ErrNoNode.
var (
	// ErrNoCPU means the chosen nodes hold no CPU this process may run on.
	ErrNoCPU = errors.New("topology: no usable cpu")
	// ErrBadNUMA means a -numa value that is neither auto, -1 nor a node number.
	ErrBadNUMA = errors.New("topology: bad -numa value")
	// ErrBadWorkers means a negative -workers.
	ErrBadWorkers = errors.New("topology: bad -workers value")
)

// Topology is the machine as plain values. Lists are sorted: nodes, packages and
// NICs by id or name, cores by (package, id), caches by (level, type, first CPU).
// A Topology is not changed by any method; share it freely.
type Topology struct {
	Source   string // "hwloc", "sysfs", "synthetic", "xml", "windows", "runtime"
	Nodes    []Node
	Packages []Package
	Cores    []Core
	PUs      []int // online CPUs
	Caches   []CPUCache
	NICs     []NIC
	// Allowed holds the CPUs this process may run on (sched_getaffinity: taskset,
	// cgroup cpuset, container limits). nil means no mask is known, as for a
	// loaded description of some other machine: every online CPU counts.
	Allowed []int
	// CanPin is false where threads cannot be pinned to CPUs; plans then name
	// CPU -1 for every loop.
	CanPin bool
	// CGroup is what this process's control group allows (Linux): the
	// cpuset, the CPU quota, memory and huge page limits. nil when unknown,
	// as for a description of another machine.
	CGroup *CGroup
	// Notes says what discovery could not learn and what it assumed instead.
	Notes []string
}

// Node is a NUMA node.
type Node struct {
	ID        int
	CPUs      []int // the node's CPUs as the OS lists them; may include offline ones
	Memory    uint64
	Free      int64 // free bytes; -1 when the source does not say
	Distances []int // SLIT row: one per node, in ascending node-id order
	HugePages []HugePages
}

// HugePages is one huge page size's pool on a node.
type HugePages struct {
	SizeKB uint64
	Total  uint64
	Free   int64 // -1 when the source does not say (hwloc knows totals only)
}

// Package is a physical package (socket).
type Package struct {
	ID   int
	CPUs []int
}

// Core is a core; its ID is unique within its package only.
type Core struct {
	Package int
	ID      int
	CPUs    []int
}

// CPUCache is one CPU cache instance: an L2 shared by two hyperthreads is one
// CPUCache.
type CPUCache struct {
	Level int
	Type  string // Data, Instruction or Unified
	Size  uint64 // bytes
	CPUs  []int
}

// NIC is a network device with its locality. Node -1 means the device has no
// NUMA affinity (the firmware gave none), not node 0.
type NIC struct {
	Name      string
	PCI       string
	Node      int
	LocalCPUs []int
}

// Node returns the node with this id.
func (t *Topology) Node(id int) (*Node, bool) {
	i := slices.IndexFunc(t.Nodes, func(n Node) bool { return n.ID == id })
	if i < 0 {
		return nil, false
	}
	return &t.Nodes[i], true
}

// NodeIDs returns the node ids, ascending.
func (t *Topology) NodeIDs() []int {
	ids := make([]int, len(t.Nodes))
	for i, n := range t.Nodes {
		ids[i] = n.ID
	}
	return ids
}

// NIC returns the network device with this name.
func (t *Topology) NIC(name string) (*NIC, bool) {
	i := slices.IndexFunc(t.NICs, func(n NIC) bool { return n.Name == name })
	if i < 0 {
		return nil, false
	}
	return &t.NICs[i], true
}

// UsableCPUs returns the CPUs of node that are online and allowed, ascending:
// the CPUs a loop for that node may be pinned to.
func (t *Topology) UsableCPUs(node int) []int {
	n, ok := t.Node(node)
	if !ok {
		return nil
	}
	var cpus []int
	for _, c := range n.CPUs {
		if contains(t.PUs, c) && (t.Allowed == nil || contains(t.Allowed, c)) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// Alignment says which NUMA nodes this process's CPUs and memory are on.
type Alignment struct {
	// CPUNodes are the nodes that hold a usable CPU (online and allowed).
	CPUNodes []int
	// MemoryNodes are the nodes memory may come from: the cgroup's
	// cpuset.mems, every node when that is not known.
	MemoryNodes []int
	// SingleNode reports that both are the same one node: what the
	// Kubernetes Topology Manager's single-numa-node policy gives a
	// Guaranteed pod (with the Memory Manager for the memory side).
	SingleNode bool
}

// Alignment returns where the process's CPUs and memory are.
func (t *Topology) Alignment() Alignment {
	var a Alignment
	for _, n := range t.Nodes {
		if len(t.UsableCPUs(n.ID)) > 0 {
			a.CPUNodes = append(a.CPUNodes, n.ID)
		}
	}
	a.MemoryNodes = t.NodeIDs()
	if mems := t.memoryNodes(); mems != nil {
		a.MemoryNodes = intersect(a.MemoryNodes, mems)
	}
	a.SingleNode = len(a.CPUNodes) == 1 && slices.Equal(a.CPUNodes, a.MemoryNodes)
	return a
}

func contains(sorted []int, v int) bool {
	_, ok := slices.BinarySearch(sorted, v)
	return ok
}

// normalize sorts every list so that reports and comparisons do not depend on
// the order a source gave.
func (t *Topology) normalize() {
	slices.SortFunc(t.Nodes, func(a, b Node) int { return a.ID - b.ID })
	for i := range t.Nodes {
		slices.Sort(t.Nodes[i].CPUs)
	}
	slices.SortFunc(t.Packages, func(a, b Package) int { return a.ID - b.ID })
	slices.SortFunc(t.Cores, func(a, b Core) int {
		if a.Package != b.Package {
			return a.Package - b.Package
		}
		return a.ID - b.ID
	})
	slices.Sort(t.PUs)
	slices.SortFunc(t.Caches, func(a, b CPUCache) int {
		if a.Level != b.Level {
			return a.Level - b.Level
		}
		if a.Type != b.Type {
			return cmpString(a.Type, b.Type)
		}
		return first(a.CPUs) - first(b.CPUs)
	})
	slices.SortFunc(t.NICs, func(a, b NIC) int { return cmpString(a.Name, b.Name) })
	if t.Allowed != nil {
		slices.Sort(t.Allowed)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func first(s []int) int {
	if len(s) == 0 {
		return -1
	}
	return s[0]
}

// assumeDistances fills missing distance rows with the kernel's defaults for a
// machine without a SLIT: 10 to itself, 20 to any other node.
func (t *Topology) assumeDistances(why string) {
	for i := range t.Nodes {
		row := make([]int, len(t.Nodes))
		for j := range row {
			row[j] = 20
			if i == j {
				row[j] = 10
			}
		}
		t.Nodes[i].Distances = row
	}
	if len(t.Nodes) > 1 {
		t.Notes = append(t.Notes, why+": distances assumed 10 local, 20 remote")
	}
}
