package topology

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/hioload-ws/hioload-ws/internal/sysfstest"
)

// cgroupTree unpacks testdata/cgroup/<name>.txtar: a fake /proc/self and
// /sys/fs/cgroup.
func cgroupTree(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cgroup", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sysfstest.Extract(b, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadCGroup(t *testing.T) {
	tests := []struct {
		tree string
		want *CGroup
	}{
		{"pod-v2", &CGroup{Version: 2, Path: "/", CPUs: []int{6, 7}, Mems: []int{1}, CPUQuota: 2,
			MemoryMax: 512 << 20, HugeTLB: []HugeTLBLimit{{SizeKB: 2048, Max: 128 << 20}}}},
		// The tightest limit on the way up binds: the pod's slice, not the
		// leaf's "max" nor the wider kubepods slice.
		{"host-v2", &CGroup{Version: 2, Path: "/kubepods.slice/kubepods-pod1.slice/cri-abc.scope", CPUs: []int{0, 1, 2, 3},
			Mems: []int{0, 1}, CPUQuota: 2.5, MemoryMax: 1 << 30, HugeTLB: []HugeTLBLimit{{SizeKB: 2048, Max: 64 << 20}}}},
		// v1 controllers are read where they are mounted; the kernel's
		// "unlimited" memory.limit_in_bytes is no limit.
		{"hybrid-v1", &CGroup{Version: 1, Path: "/", CPUs: []int{1}, Mems: []int{0}, CPUQuota: 1.5}},
		{"none", nil},
	}
	for _, tc := range tests {
		t.Run(tc.tree, func(t *testing.T) {
			got, err := ReadCGroup(cgroupTree(t, tc.tree))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ReadCGroup = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadCGroupBadFiles(t *testing.T) {
	for _, tc := range []struct{ file, content, want string }{
		{"sys/fs/cgroup/cpu.max", "lots 100000", "bad cpu.max"},
		{"sys/fs/cgroup/memory.max", "-5", "bad limit"},
		{"sys/fs/cgroup/cpuset.cpus.effective", "2-x", "cpuset.cpus.effective"},
		{"proc/self/cgroup", "garbage", "bad /proc/self/cgroup line"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			dir := cgroupTree(t, "pod-v2")
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadCGroup(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one containing %q", err, tc.want)
			}
		})
	}
}

// TestReadCGroupHere reads this process's cgroup: whatever the machine, the
// cgroup's cpuset holds every CPU the process may run on.
func TestReadCGroupHere(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cgroups are Linux")
	}
	g, err := ReadCGroup("")
	if err != nil {
		t.Fatal(err)
	}
	if g == nil || g.CPUs == nil {
		t.Skip("no cpuset controller visible here")
	}
	topo, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range topo.Allowed {
		if !contains(g.CPUs, c) {
			t.Errorf("allowed cpu %d is outside the cgroup's cpuset %v", c, g.CPUs)
		}
	}
	if !reflect.DeepEqual(topo.CGroup, g) {
		t.Errorf("Discover's CGroup %+v, ReadCGroup's %+v", topo.CGroup, g)
	}
}

func TestParseCPUMax(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		bad  bool
	}{
		{in: "max 100000", want: 0},
		{in: "max", want: 0},
		{in: "200000 100000", want: 2},
		{in: "50000 100000\n", want: 0.5},
		{in: "150000", want: 1.5},
		{in: "", bad: true},
		{in: "0 100000", bad: true},
		{in: "100 0", bad: true},
		{in: "1 2 3", bad: true},
		{in: "-1 100000", bad: true},
	} {
		got, err := ParseCPUMax(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseCPUMax(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestQuotaCPUs(t *testing.T) {
	for q, want := range map[float64]int{0: 0, 0.1: 1, 1: 1, 1.0000000001: 1, 1.5: 2, 2: 2, 7.2: 8} {
		if got := (&CGroup{CPUQuota: q}).QuotaCPUs(); got != want {
			t.Errorf("QuotaCPUs(%v) = %d, want %d", q, got, want)
		}
	}
	if (*CGroup)(nil).QuotaCPUs() != 0 {
		t.Error("nil CGroup has a quota")
	}
}

func TestAlignment(t *testing.T) {
	topo := fakeMachine(t, "two-node")
	if a := topo.Alignment(); a.SingleNode || len(a.CPUNodes) != 2 || len(a.MemoryNodes) != 2 {
		t.Errorf("whole two-node machine: %+v", a)
	}
	topo.Allowed = []int{6, 7}
	if a := topo.Alignment(); a.SingleNode {
		t.Errorf("cpus on node 1, memory anywhere: %+v", a)
	}
	topo.CGroup = &CGroup{CPUs: []int{6, 7}, Mems: []int{1}}
	if a := topo.Alignment(); !a.SingleNode || a.CPUNodes[0] != 1 || a.MemoryNodes[0] != 1 {
		t.Errorf("pod aligned on node 1: %+v", a)
	}
	topo.CGroup.Mems = []int{0}
	if a := topo.Alignment(); a.SingleNode {
		t.Errorf("cpus on node 1, memory on node 0: %+v", a)
	}
}

// FuzzCGroupFiles feeds the same bytes to every cgroup file parser: none may
// panic, and what they accept must be well formed.
func FuzzCGroupFiles(f *testing.F) {
	for _, s := range []string{
		"0::/\n", "4:memory:/docker/abc\n0::/a b\n", "x:y", "1:cpu:",
		"35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"33 30 0:29 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n",
		"1 2 3 4 5 6 - cgroup\n", "max 100000", "250000 100000", "9223372036854775807 1",
		"hugetlb.2MB.max", "hugetlb.64KB.rsvd.max", "hugetlb.99999999999GB.max",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if lines, err := ParseProcCGroup([]byte(s)); err == nil {
			for _, l := range lines {
				if l.ID < 0 || !strings.HasPrefix(l.Path, "/") {
					t.Fatalf("accepted line %+v", l)
				}
			}
		}
		if mounts, err := ParseCGroupMounts([]byte(s)); err == nil {
			for _, m := range mounts {
				if m.Version != 1 && m.Version != 2 || !strings.HasPrefix(m.Root, "/") || !strings.HasPrefix(m.Point, "/") {
					t.Fatalf("accepted mount %+v", m)
				}
			}
		}
		if q, err := ParseCPUMax(s); err == nil && q < 0 {
			t.Fatalf("ParseCPUMax(%q) = %v", s, q)
		}
		if v, err := parseLimit(s); err == nil && v < 0 {
			t.Fatalf("parseLimit(%q) = %v", s, v)
		}
		if kb, ok := hugetlbFile(s, ".max"); ok && kb == 0 {
			t.Fatalf("hugetlbFile(%q) = 0", s)
		}
	})
}
