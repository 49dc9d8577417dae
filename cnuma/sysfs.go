package cnuma

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SysFS reads NUMA and CPU topology from a Linux sysfs tree. Root is the
// directory that stands for /sys; the zero value reads the real /sys. Tests point
// Root at a fake tree (testdata/sysfs/<case>) holding only the files read here:
//
//	devices/system/node/online, nodeN/{cpulist,meminfo,distance}
//	devices/system/node/nodeN/hugepages/hugepages-<size>kB/{nr,free}_hugepages
//	devices/system/cpu/{online,possible}, cpuN/topology/{physical_package_id,core_id}
//	devices/system/cpu/cpuN/cache/indexK/{level,type,size,shared_cpu_list,id}
//	class/net/NAME -> ../../devices/.../net/NAME, with numa_node and local_cpulist
//	in the device's directory (or a parent's, as for virtio).
//
// It is plain Go and builds on every platform; only Linux has such a tree.
type SysFS struct {
	Root string
}

// HugePages is one huge page size's pool on a node.
type HugePages struct {
	SizeKB uint64 // page size in KiB (2048, 1048576)
	Total  uint64 // nr_hugepages
	Free   uint64 // free_hugepages
}

// CPUTopology is where a CPU sits: its package and its core within the package.
type CPUTopology struct {
	Package int // physical_package_id
	Core    int // core_id, unique within a package only
}

// CacheInfo is one cache level seen from a CPU (cpuN/cache/indexK).
type CacheInfo struct {
	Level int
	Type  string // Data, Instruction or Unified
	Size  uint64 // bytes
	ID    int    // sysfs cache id (hwloc: logical index) within level and type; -1 if none
	CPUs  []int  // shared_cpu_list
}

// NetDevice is a network interface backed by a device (virtual ones such as lo
// are left out, as hwloc does).
type NetDevice struct {
	Name      string
	PCI       string // PCI address ("0000:00:03.0"), "" when not on PCI
	Node      int    // numa_node; -1 = no affinity
	LocalCPUs []int  // local_cpulist, nil when absent
}

func (s SysFS) path(elem ...string) string {
	root := s.Root
	if root == "" {
		root = "/sys"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

func (s SysFS) read(elem ...string) (string, error) {
	b, err := os.ReadFile(s.path(elem...))
	if err != nil {
		return "", fmt.Errorf("cnuma: sysfs: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s SysFS) readInt(elem ...string) (int64, error) {
	v, err := s.read(elem...)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cnuma: sysfs %s: %w", s.path(elem...), err)
	}
	return n, nil
}

func (s SysFS) readList(elem ...string) ([]int, error) {
	v, err := s.read(elem...)
	if err != nil {
		return nil, err
	}
	return ParseCPUList(v)
}

// readDir lists a directory of the tree. A missing directory is empty: the
// kernel lacks what it would describe (hugetlbfs, cache information, network
// devices).
func (s SysFS) readDir(elem ...string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(s.path(elem...))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cnuma: sysfs: %w", err)
	}
	return ents, nil
}

func nodeDir(n int) string { return "node" + strconv.Itoa(n) }
func cpuDir(c int) string  { return "cpu" + strconv.Itoa(c) }

// Nodes returns the online node ids (node/online). A kernel without NUMA has no
// node directory: that is ErrNoNUMA.
func (s SysFS) Nodes() ([]int, error) {
	nodes, err := s.readList("devices/system/node/online")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoNUMA, err)
	}
	return nodes, err
}

// NodeCPUs returns nodeN/cpulist.
func (s SysFS) NodeCPUs(node int) ([]int, error) {
	cpus, err := s.readList("devices/system/node", nodeDir(node), "cpulist")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %d (%v)", ErrNoNode, node, err)
	}
	return cpus, err
}

// NodeMemory returns MemTotal and MemFree of nodeN/meminfo.
func (s SysFS) NodeMemory(node int) (Memory, error) {
	b, err := os.ReadFile(s.path("devices/system/node", nodeDir(node), "meminfo"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Memory{}, fmt.Errorf("%w: %d (%v)", ErrNoNode, node, err)
		}
		return Memory{}, fmt.Errorf("cnuma: sysfs: %w", err)
	}
	return ParseNodeMeminfo(b)
}

// ParseNodeMeminfo parses a nodeN/meminfo file ("Node 0 MemTotal:  4155964 kB").
// Both MemTotal and MemFree must be present.
func ParseNodeMeminfo(b []byte) (Memory, error) {
	var m Memory
	var haveFree bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// "Node", id, "Key:", value, "kB"
		if len(f) < 4 || f[0] != "Node" {
			continue
		}
		v, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("cnuma: meminfo %q: %w", sc.Text(), err)
		}
		if len(f) > 4 && f[4] == "kB" {
			if v > ^uint64(0)>>10 {
				return Memory{}, fmt.Errorf("cnuma: meminfo %q: value too large", sc.Text())
			}
			v <<= 10
		}
		switch f[2] {
		case "MemTotal:":
			m.Total, m.HasTotal = v, true
		case "MemFree:":
			m.Free, haveFree = v, true
		}
	}
	if !m.HasTotal || !haveFree {
		return Memory{}, errors.New("cnuma: meminfo: no MemTotal or MemFree line")
	}
	return m, nil
}

// NodeDistances returns nodeN/distance: one distance per online node, in
// ascending node-id order.
func (s SysFS) NodeDistances(node int) ([]int, error) {
	v, err := s.read("devices/system/node", nodeDir(node), "distance")
	if err != nil {
		return nil, err
	}
	return ParseDistances(v)
}

// ParseDistances parses a nodeN/distance line ("10 21"). Each value must be a
// positive number below 256 (the SLIT is a byte table).
func ParseDistances(s string) ([]int, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, errors.New("cnuma: distance: empty")
	}
	d := make([]int, len(f))
	for i, v := range f {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 255 {
			return nil, fmt.Errorf("cnuma: distance %q: bad value %q", s, v)
		}
		d[i] = n
	}
	return d, nil
}

var hugeDirRe = regexp.MustCompile(`^hugepages-([0-9]+)kB$`)

// NodeHugePages returns the node's huge page pools, smallest page first. A node
// without a hugepages directory (kernel without hugetlbfs) has none.
func (s SysFS) NodeHugePages(node int) ([]HugePages, error) {
	ents, err := s.readDir("devices/system/node", nodeDir(node), "hugepages")
	if err != nil {
		return nil, err
	}
	var hp []HugePages
	for _, e := range ents {
		m := hugeDirRe.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		size, _ := strconv.ParseUint(m[1], 10, 64)
		base := []string{"devices/system/node", nodeDir(node), "hugepages", e.Name()}
		total, err := s.readInt(append(base, "nr_hugepages")...)
		if err != nil {
			return nil, err
		}
		free, err := s.readInt(append(base, "free_hugepages")...)
		if err != nil {
			return nil, err
		}
		hp = append(hp, HugePages{SizeKB: size, Total: uint64(total), Free: uint64(free)})
	}
	slices.SortFunc(hp, func(a, b HugePages) int { return cmp.Compare(a.SizeKB, b.SizeKB) })
	return hp, nil
}

// OnlineCPUs returns cpu/online.
func (s SysFS) OnlineCPUs() ([]int, error) { return s.readList("devices/system/cpu/online") }

// PossibleCPUs returns cpu/possible.
func (s SysFS) PossibleCPUs() ([]int, error) { return s.readList("devices/system/cpu/possible") }

// CPUTopology returns the package and core of an online CPU.
func (s SysFS) CPUTopology(cpu int) (CPUTopology, error) {
	pkg, err := s.readInt("devices/system/cpu", cpuDir(cpu), "topology/physical_package_id")
	if err != nil {
		return CPUTopology{}, err
	}
	core, err := s.readInt("devices/system/cpu", cpuDir(cpu), "topology/core_id")
	if err != nil {
		return CPUTopology{}, err
	}
	return CPUTopology{Package: int(pkg), Core: int(core)}, nil
}

// CPUCaches returns the caches an online CPU sees, in index order.
func (s SysFS) CPUCaches(cpu int) ([]CacheInfo, error) {
	ents, err := s.readDir("devices/system/cpu", cpuDir(cpu), "cache")
	if err != nil {
		return nil, err
	}
	var cs []CacheInfo
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "index") {
			continue
		}
		c, err := s.cache(cpu, e.Name())
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func (s SysFS) cache(cpu int, index string) (CacheInfo, error) {
	d := []string{"devices/system/cpu", cpuDir(cpu), "cache", index}
	c := CacheInfo{ID: -1}
	lvl, err := s.readInt(append(d, "level")...)
	if err != nil {
		return c, err
	}
	c.Level = int(lvl)
	if c.Type, err = s.read(append(d, "type")...); err != nil {
		return c, err
	}
	size, err := s.read(append(d, "size")...)
	if err != nil {
		return c, err
	}
	if c.Size, err = ParseSize(size); err != nil {
		return c, err
	}
	if c.CPUs, err = s.readList(append(d, "shared_cpu_list")...); err != nil {
		return c, err
	}
	if id, err := s.readInt(append(d, "id")...); err == nil {
		c.ID = int(id)
	}
	return c, nil
}

// ParseSize parses a sysfs size such as "32K", "1024K", "32M" or "512" into
// bytes.
func ParseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mul := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mul, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mul, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mul, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("cnuma: size %q: %w", s, err)
	}
	return n * mul, nil
}

// NetDevices returns the network interfaces under class/net that have a device
// with a numa_node file, sorted by name.
func (s SysFS) NetDevices() ([]NetDevice, error) {
	ents, err := s.readDir("class/net")
	if err != nil {
		return nil, err
	}
	var devs []NetDevice
	for _, e := range ents {
		d, ok, err := s.netDevice(e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			devs = append(devs, d)
		}
	}
	slices.SortFunc(devs, func(a, b NetDevice) int { return strings.Compare(a.Name, b.Name) })
	return devs, nil
}

var pciAddrRe = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// netDevice resolves class/net/NAME to its device directory and walks up from
// there to the first directory with a numa_node file: the PCI function for a
// plain NIC, a parent of the virtio device for virtio-net.
func (s SysFS) netDevice(name string) (NetDevice, bool, error) {
	real, err := filepath.EvalSymlinks(s.path("class/net", name))
	if err != nil {
		return NetDevice{}, false, fmt.Errorf("cnuma: sysfs: net %s: %w", name, err)
	}
	devRoot, err := filepath.EvalSymlinks(s.path("devices"))
	if err != nil {
		return NetDevice{}, false, nil
	}
	for dir := filepath.Dir(real); strings.HasPrefix(dir, devRoot+string(filepath.Separator)); dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(dir, "numa_node"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return NetDevice{}, false, fmt.Errorf("cnuma: sysfs: %w", err)
		}
		node, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || node < -1 {
			return NetDevice{}, false, fmt.Errorf("cnuma: sysfs: %s/numa_node: bad value %q", dir, b)
		}
		d := NetDevice{Name: name, Node: node}
		if pciAddrRe.MatchString(filepath.Base(dir)) {
			d.PCI = filepath.Base(dir)
		}
		if v, err := os.ReadFile(filepath.Join(dir, "local_cpulist")); err == nil {
			if d.LocalCPUs, err = ParseCPUList(string(v)); err != nil {
				return NetDevice{}, false, err
			}
		}
		return d, true, nil
	}
	return NetDevice{}, false, nil
}
