package topology

import (
	"slices"
	"strings"
	"testing"

	"github.com/hioload-ws/hioload-ws/internal/sysfstest"
)

func TestFromSysFSTwoNode(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	if topo.Source != "sysfs" || !topo.CanPin || topo.Allowed != nil {
		t.Fatalf("header %+v", topo)
	}
	if !slices.Equal(topo.NodeIDs(), []int{0, 1}) || !slices.Equal(topo.PUs, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("nodes %v pus %v", topo.NodeIDs(), topo.PUs)
	}
	n1, _ := topo.Node(1)
	if n1.Memory != 8<<30 || n1.Free != 7<<30 || !slices.Equal(n1.Distances, []int{21, 10}) {
		t.Fatalf("node 1 = %+v", n1)
	}
	n0, _ := topo.Node(0)
	if !slices.Equal(n0.HugePages, []HugePages{{SizeKB: 2048, Total: 16, Free: 8}, {SizeKB: 1048576, Total: 0, Free: 0}}) {
		t.Fatalf("node 0 huge pages %+v", n0.HugePages)
	}
	if len(topo.Packages) != 2 || !slices.Equal(topo.Packages[1].CPUs, []int{4, 5, 6, 7}) {
		t.Fatalf("packages %+v", topo.Packages)
	}
	if len(topo.Cores) != 4 || topo.Cores[3].Package != 1 || topo.Cores[3].ID != 1 || !slices.Equal(topo.Cores[3].CPUs, []int{6, 7}) {
		t.Fatalf("cores %+v", topo.Cores)
	}
	count := map[string]int{}
	for _, c := range topo.Caches {
		count[c.Type+string(rune('0'+c.Level))]++
	}
	if want := map[string]int{"Data1": 4, "Instruction1": 4, "Unified2": 4, "Unified3": 2}; !equalMaps(count, want) {
		t.Fatalf("cache instances %v, want %v", count, want)
	}
	eth0, ok := topo.NIC("eth0")
	if !ok || eth0.Node != 1 || eth0.PCI != "0000:81:00.0" {
		t.Fatalf("eth0 = %+v", eth0)
	}
	if _, ok := topo.NIC("lo"); ok {
		t.Fatal("lo is listed as a device NIC")
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFromSysFSOffline(t *testing.T) {
	topo := fakeMachine(t, "offline")
	if !slices.Equal(topo.PUs, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("pus %v", topo.PUs)
	}
	if got := topo.UsableCPUs(1); !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("UsableCPUs(1) = %v", got)
	}
	for _, c := range topo.Caches {
		if slices.Contains(c.CPUs, 6) || slices.Contains(c.CPUs, 7) {
			t.Fatalf("cache %+v lists an offline cpu", c)
		}
	}
}

func TestFromSysFSNoNUMA(t *testing.T) {
	topo := fakeMachine(t, "no-numa")
	if len(topo.Nodes) != 1 || !slices.Equal(topo.Nodes[0].CPUs, []int{0, 1}) || len(topo.Notes) == 0 {
		t.Fatalf("topology %+v", topo)
	}
}

func TestFromSysFSErrors(t *testing.T) {
	b := []byte("-- devices/system/cpu/online --\n0-1\n-- devices/system/node/online --\n0\n")
	dir := t.TempDir()
	if err := sysfstest.Extract(b, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := FromSysFS(dir); err == nil {
		t.Error("a tree without node0 files loaded")
	}
	if _, err := FromSysFS(t.TempDir()); err == nil {
		t.Error("an empty tree loaded")
	}
}

func TestFromSysFSBadDistance(t *testing.T) {
	b, err := readArchive("bad-distance")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sysfstest.Extract(b, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := FromSysFS(dir); err == nil || !strings.Contains(err.Error(), "distance") {
		t.Fatalf("FromSysFS with a short distance row: %v", err)
	}
}
