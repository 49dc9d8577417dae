//go:build linux && cgo

package cnuma

/*
#cgo pkg-config: hwloc
#include <errno.h>
#include <stdio.h>
#include <hwloc.h>

// Union members of hwloc_obj_attr_u cannot be read from Go; these do it.

static unsigned long long cnuma_node_memory(hwloc_obj_t o) { return o->attr->numanode.local_memory; }
static unsigned cnuma_node_page_types(hwloc_obj_t o) { return o->attr->numanode.page_types_len; }
static unsigned long long cnuma_node_page_size(hwloc_obj_t o, unsigned i) { return o->attr->numanode.page_types[i].size; }
static unsigned long long cnuma_node_page_count(hwloc_obj_t o, unsigned i) { return o->attr->numanode.page_types[i].count; }

static unsigned long long cnuma_cache_size(hwloc_obj_t o) { return o->attr->cache.size; }
static unsigned cnuma_cache_depth(hwloc_obj_t o) { return o->attr->cache.depth; }
static int cnuma_cache_type(hwloc_obj_t o) { return (int)o->attr->cache.type; }

static int cnuma_osdev_is_net(hwloc_obj_t o) { return o->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK; }

// cnuma_pci_addr writes the PCI address of o's nearest PCI device ancestor into
// buf, or "" when there is none.
static void cnuma_pci_addr(hwloc_obj_t o, char *buf, size_t len) {
	buf[0] = 0;
	for (; o != NULL; o = o->parent) {
		if (o->type == HWLOC_OBJ_PCI_DEVICE) {
			snprintf(buf, len, "%04x:%02x:%02x.%01x", o->attr->pcidev.domain,
				o->attr->pcidev.bus, o->attr->pcidev.dev, o->attr->pcidev.func);
			return;
		}
	}
}

// cnuma_bitmap_list writes the indexes set in b into out (cap entries) and
// returns how many, or -1 when b is infinite or out is too small.
static int cnuma_bitmap_list(hwloc_const_bitmap_t b, int *out, int cap) {
	if (b == NULL) return 0;
	if (hwloc_bitmap_weight(b) < 0) return -1;
	int n = 0;
	for (int i = hwloc_bitmap_first(b); i >= 0; i = hwloc_bitmap_next(b, i)) {
		if (n == cap) return -1;
		out[n++] = i;
	}
	return n;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

type hwloc struct {
	t   C.hwloc_topology_t
	buf []C.int // scratch for bitmaps
}

func loadHwloc(in HwlocInput) (*HwlocTopology, error) {
	if in.Synthetic != "" && in.XMLFile != "" {
		return nil, errors.New("cnuma: hwloc: both a synthetic description and an XML file given")
	}
	h := &hwloc{buf: make([]C.int, MaxCPU)}
	if r, err := C.hwloc_topology_init(&h.t); r != 0 {
		return nil, fmt.Errorf("cnuma: hwloc_topology_init: %w", err)
	}
	defer C.hwloc_topology_destroy(h.t)
	if err := h.configure(in); err != nil {
		return nil, err
	}
	if r, err := C.hwloc_topology_load(h.t); r != 0 {
		return nil, fmt.Errorf("cnuma: hwloc_topology_load: %w", err)
	}
	return h.snapshot()
}

func (h *hwloc) configure(in HwlocInput) error {
	if r, err := C.hwloc_topology_set_io_types_filter(h.t, C.HWLOC_TYPE_FILTER_KEEP_IMPORTANT); r != 0 {
		return fmt.Errorf("cnuma: hwloc_topology_set_io_types_filter: %w", err)
	}
	// hwloc drops instruction caches by default; lstopo and hwloc-calc keep them.
	if r, err := C.hwloc_topology_set_icache_types_filter(h.t, C.HWLOC_TYPE_FILTER_KEEP_ALL); r != 0 {
		return fmt.Errorf("cnuma: hwloc_topology_set_icache_types_filter: %w", err)
	}
	if r, err := C.hwloc_topology_set_flags(h.t, C.HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED); r != 0 {
		return fmt.Errorf("cnuma: hwloc_topology_set_flags: %w", err)
	}
	switch {
	case in.Synthetic != "":
		s := C.CString(in.Synthetic)
		defer C.free(unsafe.Pointer(s))
		if r, err := C.hwloc_topology_set_synthetic(h.t, s); r != 0 {
			return fmt.Errorf("cnuma: hwloc_topology_set_synthetic(%q): %w", in.Synthetic, err)
		}
	case in.XMLFile != "":
		s := C.CString(in.XMLFile)
		defer C.free(unsafe.Pointer(s))
		if r, err := C.hwloc_topology_set_xml(h.t, s); r != 0 {
			return fmt.Errorf("cnuma: hwloc_topology_set_xml(%q): %w", in.XMLFile, err)
		}
	}
	return nil
}

func (h *hwloc) snapshot() (*HwlocTopology, error) {
	ht := &HwlocTopology{
		APIVersion: uint(C.hwloc_get_api_version()),
		ThisSystem: C.hwloc_topology_is_thissystem(h.t) != 0,
	}
	var err error
	steps := []func(*HwlocTopology) error{h.packages, h.nodes, h.cores, h.pus, h.caches, h.distances, h.netDevices}
	for _, step := range steps {
		if err = step(ht); err != nil {
			return nil, err
		}
	}
	return ht, nil
}

func (h *hwloc) each(typ C.hwloc_obj_type_t, fn func(C.hwloc_obj_t) error) error {
	for o := C.hwloc_get_next_obj_by_type(h.t, typ, nil); o != nil; o = C.hwloc_get_next_obj_by_type(h.t, typ, o) {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (h *hwloc) list(b C.hwloc_const_bitmap_t) ([]int, error) {
	n := C.cnuma_bitmap_list(b, &h.buf[0], C.int(len(h.buf)))
	if n < 0 {
		return nil, errors.New("cnuma: hwloc: bitmap infinite or above MaxCPU")
	}
	l := make([]int, n)
	for i := range l {
		l[i] = int(h.buf[i])
	}
	return l, nil
}

func osIndex(o C.hwloc_obj_t) int {
	if o.os_index == C.HWLOC_UNKNOWN_INDEX {
		return -1
	}
	return int(o.os_index)
}

func (h *hwloc) packages(ht *HwlocTopology) error {
	return h.each(C.HWLOC_OBJ_PACKAGE, func(o C.hwloc_obj_t) error {
		cpus, err := h.list(C.hwloc_const_bitmap_t(o.cpuset))
		ht.Packages = append(ht.Packages, HwlocObject{OSIndex: osIndex(o), CPUs: cpus})
		return err
	})
}

func (h *hwloc) nodes(ht *HwlocTopology) error {
	return h.each(C.HWLOC_OBJ_NUMANODE, func(o C.hwloc_obj_t) error {
		cpus, err := h.list(C.hwloc_const_bitmap_t(o.cpuset))
		n := HwlocNode{OSIndex: osIndex(o), CPUs: cpus, Memory: uint64(C.cnuma_node_memory(o))}
		for i := C.unsigned(0); i < C.cnuma_node_page_types(o); i++ {
			n.PageTypes = append(n.PageTypes, HwlocPageType{
				SizeKB: uint64(C.cnuma_node_page_size(o, i)) >> 10,
				Count:  uint64(C.cnuma_node_page_count(o, i)),
			})
		}
		ht.Nodes = append(ht.Nodes, n)
		return err
	})
}

func (h *hwloc) cores(ht *HwlocTopology) error {
	return h.each(C.HWLOC_OBJ_CORE, func(o C.hwloc_obj_t) error {
		cpus, err := h.list(C.hwloc_const_bitmap_t(o.cpuset))
		c := HwlocCore{Package: -1, OSIndex: osIndex(o), CPUs: cpus}
		if p := C.hwloc_get_ancestor_obj_by_type(h.t, C.HWLOC_OBJ_PACKAGE, o); p != nil {
			c.Package = osIndex(p)
		}
		ht.Cores = append(ht.Cores, c)
		return err
	})
}

func (h *hwloc) pus(ht *HwlocTopology) error {
	return h.each(C.HWLOC_OBJ_PU, func(o C.hwloc_obj_t) error {
		ht.PUs = append(ht.PUs, osIndex(o))
		return nil
	})
}

var cacheTypes = []C.hwloc_obj_type_t{
	C.HWLOC_OBJ_L1CACHE, C.HWLOC_OBJ_L1ICACHE, C.HWLOC_OBJ_L2CACHE, C.HWLOC_OBJ_L2ICACHE,
	C.HWLOC_OBJ_L3CACHE, C.HWLOC_OBJ_L3ICACHE, C.HWLOC_OBJ_L4CACHE, C.HWLOC_OBJ_L5CACHE,
}

func (h *hwloc) caches(ht *HwlocTopology) error {
	for _, typ := range cacheTypes {
		err := h.each(typ, func(o C.hwloc_obj_t) error {
			cpus, err := h.list(C.hwloc_const_bitmap_t(o.cpuset))
			ht.Caches = append(ht.Caches, CacheInfo{
				Level: int(C.cnuma_cache_depth(o)),
				Type:  cacheTypeName(int(C.cnuma_cache_type(o))),
				Size:  uint64(C.cnuma_cache_size(o)),
				ID:    int(o.logical_index),
				CPUs:  cpus,
			})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func cacheTypeName(t int) string {
	switch t {
	case C.HWLOC_OBJ_CACHE_DATA:
		return "Data"
	case C.HWLOC_OBJ_CACHE_INSTRUCTION:
		return "Instruction"
	default:
		return "Unified"
	}
}

func (h *hwloc) distances(ht *HwlocTopology) error {
	var nr C.unsigned = 1
	var d *C.struct_hwloc_distances_s
	r, err := C.hwloc_distances_get_by_type(h.t, C.HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0)
	if r != 0 {
		return fmt.Errorf("cnuma: hwloc_distances_get_by_type: %w", err)
	}
	if nr == 0 || d == nil {
		return nil
	}
	defer C.hwloc_distances_release(h.t, d)
	n := int(d.nbobjs)
	objs := unsafe.Slice(d.objs, n)
	vals := unsafe.Slice(d.values, n*n)
	ht.DistanceNodes = make([]int, n)
	ht.Distances = make([][]int, n)
	for i := range n {
		ht.DistanceNodes[i] = osIndex(objs[i])
		ht.Distances[i] = make([]int, n)
		for j := range n {
			ht.Distances[i][j] = int(vals[i*n+j])
		}
	}
	return nil
}

func (h *hwloc) netDevices(ht *HwlocTopology) error {
	root := C.hwloc_get_root_obj(h.t)
	var buf [32]C.char
	for o := C.hwloc_get_next_osdev(h.t, nil); o != nil; o = C.hwloc_get_next_osdev(h.t, o) {
		if C.cnuma_osdev_is_net(o) == 0 {
			continue
		}
		C.cnuma_pci_addr(o, &buf[0], C.size_t(len(buf)))
		d := NetDevice{Name: C.GoString(o.name), PCI: C.GoString(&buf[0]), Node: -1}
		anc := C.hwloc_get_non_io_ancestor_obj(h.t, o)
		if anc == nil {
			anc = root
		}
		var err error
		if d.LocalCPUs, err = h.list(C.hwloc_const_bitmap_t(anc.cpuset)); err != nil {
			return err
		}
		// hwloc hangs a device of unknown locality on the root: no affinity.
		if anc != root && C.hwloc_bitmap_weight(C.hwloc_const_bitmap_t(anc.nodeset)) == 1 {
			d.Node = int(C.hwloc_bitmap_first(C.hwloc_const_bitmap_t(anc.nodeset)))
		}
		ht.NetDevices = append(ht.NetDevices, d)
	}
	return nil
}
