package topology

import (
	"errors"
	"slices"
	"testing"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// testdata/two-node-nic.xml is "lstopo --input 'pack:2 numa:1 l3:1 core:2 pu:2'
// --of xml" with a SLIT added by hwloc-annotate and, by hand, 32 huge pages on
// node 1, a NIC eth0 under package 1 and a NIC eth1 on the machine (no
// affinity).
func TestLoadXML(t *testing.T) {
	topo, err := LoadXML("testdata/two-node-nic.xml")
	if errors.Is(err, cnuma.ErrNoHwloc) {
		t.Skipf("hwloc not in this build: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if topo.Source != "xml" || !slices.Equal(topo.NodeIDs(), []int{0, 1}) || len(topo.PUs) != 8 || len(topo.Notes) != 0 {
		t.Fatalf("topology %+v", topo)
	}
	n1, _ := topo.Node(1)
	if !slices.Equal(n1.Distances, []int{21, 10}) || n1.Memory != 1<<30 || n1.Free != -1 ||
		!slices.Equal(n1.HugePages, []HugePages{{SizeKB: 2048, Total: 32, Free: -1}}) {
		t.Fatalf("node 1 = %+v", n1)
	}
	eth0, _ := topo.NIC("eth0")
	eth1, _ := topo.NIC("eth1")
	if eth0 == nil || eth0.Node != 1 || eth0.PCI != "0000:81:00.0" || !slices.Equal(eth0.LocalCPUs, []int{4, 5, 6, 7}) {
		t.Fatalf("eth0 = %+v", eth0)
	}
	if eth1 == nil || eth1.Node != -1 || eth1.PCI != "0000:00:03.0" {
		t.Fatalf("eth1 = %+v", eth1)
	}
	p, err := topo.PlanNIC(Auto, 0, "eth0")
	if err != nil || !slices.Equal(p.Nodes, []int{1}) || len(p.Loops) != 4 || p.Loops[0].CPU != 4 {
		t.Fatalf("auto plan near eth0: %+v, %v", p, err)
	}
	if len(topo.Packages) != 2 || len(topo.Cores) != 4 || len(topo.Caches) != 2 {
		t.Fatalf("packages %d cores %d caches %d", len(topo.Packages), len(topo.Cores), len(topo.Caches))
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := LoadXML("testdata/missing.xml"); err == nil {
		t.Error("a missing XML loaded")
	}
	if _, err := LoadSynthetic("pack:zero"); err == nil {
		t.Error("a broken synthetic description loaded")
	}
}
