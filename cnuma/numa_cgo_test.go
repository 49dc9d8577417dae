//go:build linux && cgo

package cnuma

import (
	"slices"
	"testing"
)

// TestLibnumaAgreesWithSysFS compares libnuma's answers with the files the
// !cgo build reads, on this machine.
func TestLibnumaAgreesWithSysFS(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("no NUMA on this machine: %v", err)
	}
	var s SysFS
	nodes, err := s.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	max, err := MaxNode()
	if err != nil || max != nodes[len(nodes)-1] {
		t.Fatalf("MaxNode() = %d, %v; sysfs nodes %v", max, err, nodes)
	}
	for _, n := range nodes {
		lib, err := NodeCPUs(n)
		sys, err2 := s.NodeCPUs(n)
		if err != nil || err2 != nil || !slices.Equal(lib, sys) {
			t.Errorf("node %d cpus: libnuma %v (%v), sysfs %v (%v)", n, lib, err, sys, err2)
		}
		row, err := s.NodeDistances(n)
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range nodes {
			if d, err := Distance(n, m); err != nil || d != row[j] {
				t.Errorf("distance %d-%d: libnuma %d (%v), sysfs %d", n, m, d, err, row[j])
			}
		}
	}
}
