package topology

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

type reportDoc struct {
	Schema string `json:"schema"`
	Nodes  []struct {
		ID        int    `json:"id"`
		CPUs      []int  `json:"cpus"`
		Memory    uint64 `json:"memory_bytes"`
		Free      *int64 `json:"free_bytes"`
		Distances []int  `json:"distances"`
		HugePages map[string]struct {
			Total uint64 `json:"total"`
			Free  *int64 `json:"free"`
		} `json:"hugepages"`
	} `json:"numa_nodes"`
	PUs     []int                 `json:"pus"`
	Caches  []struct{ Level int } `json:"caches"`
	Devices []struct {
		Name string `json:"name"`
		Node int    `json:"numa_node"`
	} `json:"devices"`
	Plan struct {
		NUMA  string `json:"numa"`
		Nodes []int  `json:"nodes"`
		Loops []struct {
			ID, CPU, Node int
		} `json:"loops"`
	} `json:"plan"`
}

func TestWriteJSON(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	p, err := topo.PlanNIC(Auto, 0, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, topo, p); err != nil {
		t.Fatal(err)
	}
	var d reportDoc
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if d.Schema != "topo/v1" || len(d.Nodes) != 2 || len(d.PUs) != 8 || len(d.Caches) != 14 {
		t.Fatalf("document %+v", d)
	}
	n0 := d.Nodes[0]
	hp := n0.HugePages["2048kB"]
	if n0.Memory != 8<<30 || n0.Free == nil || hp.Total != 16 || hp.Free == nil || *hp.Free != 8 || len(n0.Distances) != 2 {
		t.Fatalf("node 0 %+v", n0)
	}
	if len(d.Devices) != 2 || d.Devices[0].Name != "eth0" || d.Devices[0].Node != 1 || d.Devices[1].Node != -1 {
		t.Fatalf("devices %+v", d.Devices)
	}
	if d.Plan.NUMA != "auto" || len(d.Plan.Loops) != 4 || d.Plan.Loops[3].CPU != 7 || d.Plan.Loops[3].ID != 3 {
		t.Fatalf("plan %+v", d.Plan)
	}
}

func TestWriteJSONLeavesUnknownFreeOut(t *testing.T) {
	topo := synthetic(t, "pack:2 numa:1 l3:1 core:4 pu:2")
	var buf bytes.Buffer
	if err := WriteJSON(&buf, topo, nil); err != nil {
		t.Fatal(err)
	}
	var d reportDoc
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Nodes[0].Free != nil || d.Plan.Loops != nil || d.Nodes[1].Distances[0] != 20 {
		t.Fatalf("document %+v", d)
	}
	if !strings.Contains(buf.String(), `"notes"`) {
		t.Fatal("assumed distances are not noted")
	}
}

func TestWriteText(t *testing.T) {
	topo := fakeMachine(t, "offline")
	topo.Allowed = []int{0, 4, 5}
	p, err := topo.Plan(Auto, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, topo, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"topology (sysfs): 2 numa node(s), 2 package(s), 3 core(s), 6 cpu(s) online\n",
		"node 1: cpus 4-7, memory 8 GiB (7 GiB free), distances 21, 10\n",
		"  hugepages 2048kB: 16 total, 8 free\n",
		"caches: 3 x L1 data 32 KiB,",
		"nic eth0 (pci 0000:81:00.0): node 1, local cpus 4-7\n",
		"nic eth1 (pci 0000:00:03.0): no numa affinity, local cpus 0-7\n",
		"this process may run on cpus 0,4-5\n",
		"plan: -numa auto -workers 0: 3 loop(s) on node(s) 0, 1 (auto: listen NIC unknown, every node)\n",
		"  loop 2: cpu 5, memory from node 1\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestReportCGroup: a pod's cgroup and its NUMA alignment show in both
// reports, which is how docs/KUBERNETES.md checks a running pod.
func TestReportCGroup(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	topo.Allowed = []int{6, 7}
	topo.CGroup = &CGroup{Version: 2, Path: "/", CPUs: []int{6, 7}, Mems: []int{1}, CPUQuota: 2,
		MemoryMax: 512 << 20, HugeTLB: []HugeTLBLimit{{SizeKB: 2048, Max: 128 << 20}}}
	p, err := topo.Plan(Auto, 0)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, topo, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cgroup v2 /: cpus 6-7, memory nodes 1, cpu quota 2.00 cpus, memory limit 512 MiB, hugetlb 2048kB limit 128 MiB\n",
		"numa alignment: cpus on node(s) 1, memory from node(s) 1: one node\n",
		"plan: -numa auto -workers 0: 2 loop(s) on node(s) 1",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, topo, p); err != nil {
		t.Fatal(err)
	}
	var d struct {
		CGroup struct {
			Version   int              `json:"version"`
			CPUs      []int            `json:"cpus"`
			Mems      []int            `json:"mems"`
			CPUQuota  float64          `json:"cpu_quota"`
			MemoryMax int64            `json:"memory_max_bytes"`
			HugeTLB   map[string]int64 `json:"hugetlb_max_bytes"`
		} `json:"cgroup"`
		Alignment struct {
			CPUNodes    []int `json:"cpu_nodes"`
			MemoryNodes []int `json:"memory_nodes"`
			SingleNode  bool  `json:"single_node"`
		} `json:"alignment"`
	}
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	g, a := d.CGroup, d.Alignment
	if g.Version != 2 || len(g.CPUs) != 2 || g.Mems[0] != 1 || g.CPUQuota != 2 || g.MemoryMax != 512<<20 ||
		g.HugeTLB["2048kB"] != 128<<20 || !a.SingleNode || a.CPUNodes[0] != 1 || a.MemoryNodes[0] != 1 {
		t.Errorf("json cgroup %+v alignment %+v\n%s", g, a, buf.Bytes())
	}
}
