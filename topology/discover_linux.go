package topology

import (
	"errors"
	"fmt"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// discover asks hwloc when the build has it (cgo), filling in what hwloc does not
// know (free memory through libnuma, free huge pages from sysfs); otherwise, or
// when hwloc fails, it reads sysfs.
func discover() (*Topology, error) {
	h, err := cnuma.LoadHwloc(cnuma.HwlocInput{})
	var t *Topology
	switch {
	case err == nil:
		if t, err = FromHwloc(h, "hwloc"); err != nil {
			return nil, err
		}
		t.Notes = nil // distances are filled from libnuma below, not assumed
		if err := t.fillFromOS(); err != nil {
			return nil, err
		}
	case errors.Is(err, cnuma.ErrNoHwloc):
		if t, err = FromSysFS(""); err != nil {
			return nil, err
		}
	default:
		hwErr := err
		if t, err = FromSysFS(""); err != nil {
			return nil, fmt.Errorf("%w (and hwloc: %v)", err, hwErr)
		}
		t.Notes = append(t.Notes, "hwloc failed, read sysfs instead: "+hwErr.Error())
	}
	allowed, err := cnuma.AllowedCPUs()
	if err != nil {
		return nil, err
	}
	t.Allowed = allowed
	if t.CGroup, err = ReadCGroup(""); err != nil {
		t.Notes = append(t.Notes, "cgroup limits unknown: "+err.Error())
	}
	return t, nil
}

// fillFromOS completes an hwloc topology of this machine: free memory and
// distances from libnuma (cnuma), huge pages with their free counts from sysfs.
func (t *Topology) fillFromOS() error {
	s := cnuma.SysFS{}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if mem, err := cnuma.NodeMemory(n.ID); err == nil {
			n.Free = int64(mem.Free)
		} else {
			t.Notes = append(t.Notes, fmt.Sprintf("node %d free memory unknown: %v", n.ID, err))
		}
		if hp, err := s.NodeHugePages(n.ID); err == nil {
			n.HugePages = n.HugePages[:0]
			for _, h := range hp {
				n.HugePages = append(n.HugePages, HugePages{SizeKB: h.SizeKB, Total: h.Total, Free: int64(h.Free)})
			}
		}
		for j, to := range t.Nodes {
			d, err := cnuma.Distance(n.ID, to.ID)
			if err != nil {
				t.Notes = append(t.Notes, fmt.Sprintf("distance %d-%d unknown, kept %d: %v", n.ID, to.ID, n.Distances[j], err))
				continue
			}
			n.Distances[j] = d
		}
	}
	return nil
}
