//go:build linux && cgo

package cnuma

import (
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestHwlocSynthetic(t *testing.T) {
	tests := []struct {
		desc                       string
		packages, nodes, cores, pu int
		node0                      []int
		l3                         int
	}{
		{"pack:2 numa:1 l3:1 core:4 pu:2", 2, 2, 8, 16, []int{0, 1, 2, 3, 4, 5, 6, 7}, 2},
		{"pack:4 numa:2 core:8 pu:2", 4, 8, 64, 128, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h, err := LoadHwloc(HwlocInput{Synthetic: tc.desc})
			if err != nil {
				t.Fatal(err)
			}
			if h.ThisSystem {
				t.Error("a synthetic topology claims to be this system")
			}
			if h.APIVersion < 0x20000 {
				t.Errorf("APIVersion = %#x, want hwloc 2.x", h.APIVersion)
			}
			if len(h.Packages) != tc.packages || len(h.Nodes) != tc.nodes || len(h.Cores) != tc.cores || len(h.PUs) != tc.pu {
				t.Fatalf("got %d packages, %d nodes, %d cores, %d PUs", len(h.Packages), len(h.Nodes), len(h.Cores), len(h.PUs))
			}
			if !slices.Equal(h.Nodes[0].CPUs, tc.node0) || h.Nodes[0].OSIndex != 0 || h.Nodes[0].Memory == 0 {
				t.Errorf("node 0 = %+v", h.Nodes[0])
			}
			if len(h.Caches) != tc.l3 || h.Distances != nil {
				t.Errorf("caches %+v, distances %v", h.Caches, h.Distances)
			}
		})
	}
	if _, err := LoadHwloc(HwlocInput{Synthetic: "pack:x"}); err == nil {
		t.Error("a broken synthetic description loaded")
	}
	if _, err := LoadHwloc(HwlocInput{Synthetic: "pu:1", XMLFile: "x.xml"}); err == nil {
		t.Error("two inputs at once accepted")
	}
}

// TestHwlocXMLOfThisMachine exports this machine with lstopo and reloads it:
// the snapshot of the XML must match the one hwloc makes of the machine.
func TestHwlocXMLOfThisMachine(t *testing.T) {
	lstopo, err := exec.LookPath("lstopo-no-graphics")
	if err != nil {
		t.Skip("lstopo-no-graphics not installed (package hwloc)")
	}
	xml := filepath.Join(t.TempDir(), "machine.xml")
	if out, err := exec.Command(lstopo, "--of", "xml", "-f", xml).CombinedOutput(); err != nil {
		t.Fatalf("lstopo: %v\n%s", err, out)
	}
	live, err := LoadHwloc(HwlocInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !live.ThisSystem {
		t.Error("this machine's topology is not this system")
	}
	fromXML, err := LoadHwloc(HwlocInput{XMLFile: xml})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(live.PUs, fromXML.PUs) || len(live.Nodes) != len(fromXML.Nodes) || len(live.Caches) != len(fromXML.Caches) {
		t.Fatalf("live %+v\nxml %+v", live, fromXML)
	}
	for i := range live.NetDevices {
		if i >= len(fromXML.NetDevices) || live.NetDevices[i].Name != fromXML.NetDevices[i].Name ||
			live.NetDevices[i].Node != fromXML.NetDevices[i].Node {
			t.Errorf("net devices: live %+v, xml %+v", live.NetDevices, fromXML.NetDevices)
			break
		}
	}
	if _, err := LoadHwloc(HwlocInput{XMLFile: filepath.Join(t.TempDir(), "missing.xml")}); err == nil {
		t.Error("a missing XML file loaded")
	}
}
