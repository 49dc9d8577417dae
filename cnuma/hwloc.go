package cnuma

// HwlocInput says which topology LoadHwloc reads. The zero value is this machine;
// otherwise exactly one of Synthetic and XMLFile is set. A loaded topology that is
// not this machine cannot be used to bind anything (hwloc's is_thissystem = 0).
type HwlocInput struct {
	Synthetic string // a synthetic description, "pack:2 numa:1 l3:1 core:4 pu:2"
	XMLFile   string // an XML export, "lstopo --of xml"
}

// HwlocTopology is a snapshot of a topology hwloc loaded: plain Go values, with
// the hwloc handle already destroyed. Lists are in hwloc's logical order, which
// for PUs, cores and nodes is ascending OS index on ordinary machines.
type HwlocTopology struct {
	APIVersion uint // hwloc_get_api_version(), 0x20800 for 2.9.0
	ThisSystem bool // hwloc_topology_is_thissystem()
	Packages   []HwlocObject
	Nodes      []HwlocNode
	Cores      []HwlocCore
	PUs        []int // OS indexes of the PUs (online CPUs)
	Caches     []CacheInfo
	// DistanceNodes and Distances hold the NUMA node distance matrix
	// (hwloc_distances_get_by_type); both are nil when hwloc has none, as for one
	// node or a synthetic topology. Distances[i][j] is from DistanceNodes[i] to
	// DistanceNodes[j].
	DistanceNodes []int
	Distances     [][]int
	// NetDevices are the OS network devices; Node is -1 when hwloc attached the
	// device's PCI bus to the whole machine (no locality) or to an object that
	// spans several nodes.
	NetDevices []NetDevice
}

// HwlocObject is an object with an OS index and a CPU set (a package).
type HwlocObject struct {
	OSIndex int
	CPUs    []int
}

// HwlocNode is a NUMA node (a memory child in hwloc 2.x).
type HwlocNode struct {
	OSIndex   int
	CPUs      []int
	Memory    uint64 // local_memory in bytes
	PageTypes []HwlocPageType
}

// HwlocPageType is one page size of a node and how many pages of it the node has.
// hwloc knows totals only, not how many are free.
type HwlocPageType struct {
	SizeKB uint64
	Count  uint64
}

// HwlocCore is a core; OSIndex is the core id within its package, as in sysfs
// core_id, and Package is the package's OS index (-1 if none).
type HwlocCore struct {
	Package int
	OSIndex int
	CPUs    []int
}

// LoadHwloc loads a topology through hwloc, keeping important I/O objects
// (HWLOC_TYPE_FILTER_KEEP_IMPORTANT), instruction caches (as lstopo does) and CPUs outside this process's cgroup
// (HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED, so that it lists what numactl and
// sysfs list). Builds without cgo on Linux return ErrNoHwloc.
func LoadHwloc(in HwlocInput) (*HwlocTopology, error) { return loadHwloc(in) }
