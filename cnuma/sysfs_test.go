package cnuma

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/hioload-ws/hioload-ws/internal/sysfstest"
)

// fakeSysFS unpacks testdata/sysfs/<name>.txtar into a temporary directory.
func fakeSysFS(t *testing.T, name string) SysFS {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sysfs", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sysfstest.Extract(b, dir); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("fake sysfs trees hold symbolic links, which need privileges on windows: %v", err)
		}
		t.Fatal(err)
	}
	return SysFS{Root: dir}
}

func TestSysFSNodes(t *testing.T) {
	s := fakeSysFS(t, "two-node")
	nodes, err := s.Nodes()
	if err != nil || !slices.Equal(nodes, []int{0, 1}) {
		t.Fatalf("Nodes() = %v, %v; want [0 1]", nodes, err)
	}
	cpus, err := s.NodeCPUs(1)
	if err != nil || !slices.Equal(cpus, []int{4, 5, 6, 7}) {
		t.Fatalf("NodeCPUs(1) = %v, %v", cpus, err)
	}
	mem, err := s.NodeMemory(1)
	want := Memory{Total: 8388608 << 10, Free: 7340032 << 10, HasTotal: true}
	if err != nil || mem != want {
		t.Fatalf("NodeMemory(1) = %+v, %v; want %+v", mem, err, want)
	}
	d, err := s.NodeDistances(0)
	if err != nil || !slices.Equal(d, []int{10, 21}) {
		t.Fatalf("NodeDistances(0) = %v, %v", d, err)
	}
	hp, err := s.NodeHugePages(0)
	wantHP := []HugePages{{SizeKB: 2048, Total: 16, Free: 8}, {SizeKB: 1048576}}
	if err != nil || !slices.Equal(hp, wantHP) {
		t.Fatalf("NodeHugePages(0) = %+v, %v; want %+v", hp, err, wantHP)
	}
	if _, err := s.NodeCPUs(2); !errors.Is(err, ErrNoNode) {
		t.Fatalf("NodeCPUs(2) error = %v, want ErrNoNode", err)
	}
	if _, err := s.NodeMemory(2); !errors.Is(err, ErrNoNode) {
		t.Fatalf("NodeMemory(2) error = %v, want ErrNoNode", err)
	}
}

func TestSysFSCPUs(t *testing.T) {
	s := fakeSysFS(t, "offline")
	online, err := s.OnlineCPUs()
	if err != nil || !slices.Equal(online, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("OnlineCPUs() = %v, %v", online, err)
	}
	ct, err := s.CPUTopology(5)
	if err != nil || ct != (CPUTopology{Package: 1, Core: 0}) {
		t.Fatalf("CPUTopology(5) = %+v, %v", ct, err)
	}
	if _, err := s.CPUTopology(6); err == nil {
		t.Fatal("CPUTopology of offline cpu 6 succeeded; its topology directory is gone")
	}
	cs, err := s.CPUCaches(5)
	if err != nil || len(cs) != 4 {
		t.Fatalf("CPUCaches(5) = %+v, %v; want 4 caches", cs, err)
	}
	l3 := cs[3]
	if l3.Level != 3 || l3.Type != "Unified" || l3.Size != 32<<20 || !slices.Equal(l3.CPUs, []int{4, 5, 6, 7}) {
		t.Fatalf("L3 of cpu 5 = %+v", l3)
	}
}

func TestSysFSNetDevices(t *testing.T) {
	devs, err := fakeSysFS(t, "two-node").NetDevices()
	if err != nil {
		t.Fatal(err)
	}
	want := []NetDevice{
		{Name: "eth0", PCI: "0000:81:00.0", Node: 1, LocalCPUs: []int{4, 5, 6, 7}},
		{Name: "eth1", PCI: "0000:00:03.0", Node: -1, LocalCPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}},
	}
	if len(devs) != len(want) {
		t.Fatalf("NetDevices() = %+v; want %+v (lo is virtual)", devs, want)
	}
	for i := range want {
		g, w := devs[i], want[i]
		if g.Name != w.Name || g.PCI != w.PCI || g.Node != w.Node || !slices.Equal(g.LocalCPUs, w.LocalCPUs) {
			t.Errorf("device %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestSysFSNoNUMA(t *testing.T) {
	if _, err := fakeSysFS(t, "no-numa").Nodes(); !errors.Is(err, ErrNoNUMA) {
		t.Fatalf("Nodes() on a kernel without NUMA: %v, want ErrNoNUMA", err)
	}
}

func TestParseNodeMeminfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Memory
		bad  bool
	}{
		{name: "real", in: "Node 0 MemTotal:        4679884 kB\nNode 0 MemFree:         3738780 kB\nNode 0 MemUsed:          941104 kB\n",
			want: Memory{Total: 4679884 << 10, Free: 3738780 << 10, HasTotal: true}},
		{name: "no free", in: "Node 0 MemTotal: 1 kB\n", bad: true},
		{name: "garbage number", in: "Node 0 MemTotal: x kB\nNode 0 MemFree: 1 kB\n", bad: true},
		{name: "overflow", in: "Node 0 MemTotal: 18446744073709551615 kB\nNode 0 MemFree: 1 kB\n", bad: true},
		{name: "empty", in: "", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNodeMeminfo([]byte(tc.in))
			if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
				t.Fatalf("ParseNodeMeminfo = %+v, %v; want %+v, error %v", got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestParseDistancesAndSize(t *testing.T) {
	if d, err := ParseDistances("10 21 31\n"); err != nil || !slices.Equal(d, []int{10, 21, 31}) {
		t.Fatalf("ParseDistances = %v, %v", d, err)
	}
	for _, bad := range []string{"", "10 x", "0", "-10", "256"} {
		if _, err := ParseDistances(bad); err == nil {
			t.Errorf("ParseDistances(%q) succeeded", bad)
		}
	}
	sizes := map[string]uint64{"32K": 32 << 10, "32768K": 32 << 20, "2M": 2 << 20, "512": 512, "1G": 1 << 30}
	for in, want := range sizes {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseSize("K"); err == nil {
		t.Error(`ParseSize("K") succeeded`)
	}
}

// FuzzParseNodeMeminfo checks that a meminfo file never panics the parser and
// that an accepted one has free memory within what the uint64 can hold.
func FuzzParseNodeMeminfo(f *testing.F) {
	f.Add([]byte("Node 0 MemTotal:        4679884 kB\nNode 0 MemFree:         3738780 kB\n"))
	f.Add([]byte("Node 1 MemTotal: 0 kB\nNode 1 MemFree: 0 kB\n"))
	f.Add([]byte("Node 0 MemFree: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseNodeMeminfo(b)
		if err == nil && !m.HasTotal {
			t.Fatalf("accepted %q without a total", b)
		}
	})
}

// FuzzParseDistances checks that accepted rows hold only SLIT-sized values.
func FuzzParseDistances(f *testing.F) {
	for _, s := range []string{"10", "10 21", "10 21 31 41\n", "", "0", "10 256"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDistances(s)
		if err != nil {
			return
		}
		for _, v := range d {
			if v <= 0 || v > 255 {
				t.Fatalf("ParseDistances(%q) = %v", s, d)
			}
		}
	})
}

// FuzzParseSize checks that sizes never panic and never wrap round.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"32K", "1024K", "32M", "512", "1G", "K", "-1K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n > 1<<62 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}
