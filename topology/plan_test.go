package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

func loops(pairs ...int) []Seat {
	var l []Seat
	for i := 0; i < len(pairs); i += 2 {
		l = append(l, Seat{CPU: pairs[i], Node: pairs[i+1]})
	}
	return l
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		machine string // fake sysfs tree, or "synthetic:<desc>"
		allowed []int  // nil = no mask
		cgroup  *CGroup
		sel     Selector
		workers int
		nic     string
		want    []Seat
		nodes   []int
		err     error
		errText string
	}{
		{name: "auto, every node", machine: "two-node", sel: Auto,
			want: loops(0, 0, 1, 0, 2, 0, 3, 0, 4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{0, 1}},
		{name: "auto, NIC on node 1", machine: "two-node", sel: Auto, nic: "eth0",
			want: loops(4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{1}},
		{name: "kernel without cache directories, NIC on node 1", machine: "no-cache", sel: Auto, nic: "eth0",
			want: loops(4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{1}},
		{name: "auto, NIC without affinity", machine: "two-node", sel: Auto, nic: "eth1",
			want: loops(0, 0, 1, 0, 2, 0, 3, 0, 4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{0, 1}},
		{name: "auto, unknown NIC", machine: "two-node", sel: Auto, nic: "lo", nodes: []int{0, 1},
			want: loops(0, 0, 1, 0, 2, 0, 3, 0, 4, 1, 5, 1, 6, 1, 7, 1)},
		{name: "node 0", machine: "two-node", sel: Selector{Node: 0},
			want: loops(0, 0, 1, 0, 2, 0, 3, 0), nodes: []int{0}},
		{name: "node 1 ignores the NIC", machine: "two-node", sel: Selector{Node: 1}, nic: "eth1",
			want: loops(4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{1}},
		{name: "fewer workers spread over nodes", machine: "two-node", sel: Auto, workers: 3,
			want: loops(0, 0, 1, 0, 4, 1), nodes: []int{0, 1}},
		{name: "more workers than cpus wrap", machine: "two-node", sel: Selector{Node: 1}, workers: 6,
			want: loops(4, 1, 5, 1, 6, 1, 7, 1, 4, 1, 5, 1), nodes: []int{1}},
		{name: "one worker", machine: "two-node", sel: Auto, workers: 1, want: loops(0, 0), nodes: []int{0, 1}},
		{name: "node that does not exist", machine: "two-node", sel: Selector{Node: 5},
			err: cnuma.ErrNoNode, errText: "nodes 0, 1"},
		{name: "negative workers", machine: "two-node", sel: Auto, workers: -1, err: ErrBadWorkers},
		{name: "cpus offline", machine: "offline", sel: Selector{Node: 1},
			want: loops(4, 1, 5, 1), nodes: []int{1}},
		{name: "cpus offline, auto", machine: "offline", sel: Auto, workers: 0,
			want: loops(0, 0, 1, 0, 2, 0, 3, 0, 4, 1, 5, 1), nodes: []int{0, 1}},
		{name: "affinity subset (taskset -c 0)", machine: "two-node", allowed: []int{0}, sel: Auto,
			want: loops(0, 0), nodes: []int{0}},
		{name: "affinity subset over both nodes", machine: "two-node", allowed: []int{1, 6}, sel: Auto,
			want: loops(1, 0, 6, 1), nodes: []int{0, 1}},
		{name: "affinity excludes the chosen node", machine: "two-node", allowed: []int{0, 1}, sel: Selector{Node: 1},
			err: ErrNoCPU, errText: `allowed "0-1"`},
		{name: "affinity excludes the NIC's node", machine: "two-node", allowed: []int{0, 1}, sel: Auto, nic: "eth0",
			want: loops(0, 0, 1, 0), nodes: []int{0}},
		{name: "memory-only node is skipped by auto", machine: "memless", sel: Auto, nic: "eth0",
			want: loops(0, 0, 1, 0, 2, 1, 3, 1), nodes: []int{0, 1}},
		{name: "memory-only node asked for", machine: "memless", sel: Selector{Node: 2}, err: ErrNoCPU},
		{name: "kernel without NUMA", machine: "no-numa", sel: Auto, want: loops(0, 0, 1, 0), nodes: []int{0}},
		{name: "synthetic 2 packages, auto", machine: "synthetic:pack:2 numa:1 l3:1 core:4 pu:2", sel: Auto, workers: 4,
			want: loops(0, 0, 1, 0, 8, 1, 9, 1), nodes: []int{0, 1}},
		{name: "synthetic 2 packages, node 1", machine: "synthetic:pack:2 numa:1 l3:1 core:4 pu:2", sel: Selector{Node: 1},
			want: loops(8, 1, 9, 1, 10, 1, 11, 1, 12, 1, 13, 1, 14, 1, 15, 1), nodes: []int{1}},
		{name: "synthetic 8 nodes, node 7 wraps", machine: "synthetic:pack:4 numa:2 core:8 pu:2", sel: Selector{Node: 7}, workers: 17,
			want: append(loops(112, 7, 113, 7, 114, 7, 115, 7, 116, 7, 117, 7, 118, 7, 119, 7, 120, 7, 121, 7, 122, 7,
				123, 7, 124, 7, 125, 7, 126, 7, 127, 7), loops(112, 7)...), nodes: []int{7}},
		{name: "synthetic 8 nodes, auto 8 workers one per node", machine: "synthetic:pack:4 numa:2 core:8 pu:2", sel: Auto, workers: 8,
			want: loops(0, 0, 16, 1, 32, 2, 48, 3, 64, 4, 80, 5, 96, 6, 112, 7), nodes: []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{name: "synthetic, invalid node", machine: "synthetic:pack:4 numa:2 core:8 pu:2", sel: Selector{Node: 8},
			err: cnuma.ErrNoNode, errText: "nodes 0, 1, 2, 3, 4, 5, 6, 7"},
		{name: "cgroup quota 2.5 cpus: 3 loops over both nodes", machine: "two-node", sel: Auto, cgroup: &CGroup{CPUQuota: 2.5},
			want: loops(0, 0, 1, 0, 4, 1), nodes: []int{0, 1}},
		{name: "cgroup quota above the cpus changes nothing", machine: "two-node", sel: Selector{Node: 1}, cgroup: &CGroup{CPUQuota: 16},
			want: loops(4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{1}},
		{name: "cgroup quota leaves -workers alone", machine: "two-node", sel: Auto, workers: 4, cgroup: &CGroup{CPUQuota: 1},
			want: loops(0, 0, 1, 0, 4, 1, 5, 1), nodes: []int{0, 1}},
		{name: "cgroup quota below one cpu: one loop", machine: "two-node", sel: Auto, cgroup: &CGroup{CPUQuota: 0.3},
			want: loops(0, 0), nodes: []int{0, 1}},
		{name: "cgroup cpuset on node 1 (kubelet static CPU manager)", machine: "two-node", sel: Auto,
			allowed: []int{6, 7}, cgroup: &CGroup{CPUs: []int{6, 7}, Mems: []int{1}},
			want: loops(6, 1, 7, 1), nodes: []int{1}},
		{name: "cgroup memory nodes narrow auto", machine: "two-node", sel: Auto, cgroup: &CGroup{Mems: []int{1}},
			want: loops(4, 1, 5, 1, 6, 1, 7, 1), nodes: []int{1}},
		{name: "cgroup memory nodes without a usable cpu are ignored", machine: "two-node", sel: Auto,
			allowed: []int{0, 1}, cgroup: &CGroup{Mems: []int{1}},
			want: loops(0, 0, 1, 0), nodes: []int{0}},
		{name: "synthetic, affinity subset", machine: "synthetic:pack:2 numa:1 l3:1 core:4 pu:2", allowed: []int{3, 12}, sel: Auto,
			want: loops(3, 0, 12, 1), nodes: []int{0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var topo *Topology
			if desc, ok := strings.CutPrefix(tc.machine, "synthetic:"); ok {
				topo = synthetic(t, desc)
			} else {
				topo = fakeMachine(t, tc.machine)
			}
			topo.Allowed, topo.CGroup = tc.allowed, tc.cgroup
			p, err := topo.PlanNIC(tc.sel, tc.workers, tc.nic)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v; want %v containing %q", err, tc.err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Loops, tc.want) || !slices.Equal(p.Nodes, tc.nodes) {
				t.Fatalf("plan nodes %v loops %v (%s)\nwant nodes %v loops %v", p.Nodes, p.Loops, p.Reason, tc.nodes, tc.want)
			}
			if p.Reason == "" || p.NUMA != tc.sel || p.Workers != tc.workers {
				t.Fatalf("plan header %+v", p)
			}
		})
	}
}

func TestPlanReasonNamesTheCGroup(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	topo.CGroup = &CGroup{CPUQuota: 2.5, Mems: []int{0}}
	p, err := topo.PlanNIC(Auto, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cgroup cpu quota 2.50 cpus: 3 loop(s)", "the cgroup takes memory from node(s) 0 only"} {
		if !strings.Contains(p.Reason, want) {
			t.Errorf("reason %q lacks %q", p.Reason, want)
		}
	}
}

func TestPlanReasonNamesTheNIC(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	p, err := topo.PlanNIC(Auto, 0, "eth0")
	if err != nil || p.Reason != "auto: eth0 is on node 1" {
		t.Fatalf("reason %q, %v", p.Reason, err)
	}
	p, err = topo.PlanNIC(Auto, 0, "eth1")
	if err != nil || !strings.Contains(p.Reason, "no NUMA affinity") {
		t.Fatalf("reason %q, %v", p.Reason, err)
	}
}

func TestPlanWithoutPinning(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	topo.CanPin = false
	topo.Allowed = []int{0} // ignored: nothing can be pinned
	p, err := topo.Plan(Selector{Node: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := loops(-1, 1, -1, 1, -1, 1, -1, 1); !slices.Equal(p.Loops, want) {
		t.Fatalf("loops %v, want %v", p.Loops, want)
	}
}

func TestPlanForUnspecifiedAddress(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:9000", "127.0.0.1:8080", "example.invalid:80", "junk"} {
		p, err := topo.PlanFor(Auto, 0, addr)
		if err != nil || !slices.Equal(p.Nodes, []int{0, 1}) {
			t.Errorf("PlanFor(%q): nodes %v (%s), %v; want every node", addr, p.Nodes, p.Reason, err)
		}
	}
	if got := InterfaceOf("127.0.0.1:1"); got == "" {
		t.Log("loopback address has no interface here")
	} else if !strings.HasPrefix(got, "lo") {
		t.Errorf("InterfaceOf(127.0.0.1) = %q", got)
	}
}
