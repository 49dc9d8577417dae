package cnuma

import (
	"errors"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These run against this machine, through libnuma with cgo and through sysfs
// and raw syscalls without.

func TestMachineNodes(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("no NUMA on this machine: %v", err)
	}
	max, err := MaxNode()
	if err != nil || max < 0 {
		t.Fatalf("MaxNode() = %d, %v", max, err)
	}
	online, err := SysFS{}.OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	var all []int
	for n := 0; n <= max; n++ {
		cpus, err := NodeCPUs(n)
		if errors.Is(err, ErrNoNode) {
			continue
		}
		if err != nil {
			t.Fatalf("NodeCPUs(%d): %v", n, err)
		}
		all = append(all, cpus...)
		mem, err := NodeMemory(n)
		if err != nil || !mem.HasTotal || mem.Total == 0 || mem.Free > mem.Total {
			t.Fatalf("NodeMemory(%d) = %+v, %v", n, mem, err)
		}
		if d, err := Distance(n, n); err != nil || d != 10 {
			t.Fatalf("Distance(%d, %d) = %d, %v; want 10", n, n, d, err)
		}
	}
	slices.Sort(all)
	for _, c := range online {
		if !slices.Contains(all, c) {
			t.Errorf("online cpu %d is in no node (nodes hold %v)", c, all)
		}
	}
	if _, err := NodeCPUs(max + 1); !errors.Is(err, ErrNoNode) {
		t.Errorf("NodeCPUs(%d) error = %v, want ErrNoNode", max+1, err)
	}
	if _, err := Distance(0, max+1); !errors.Is(err, ErrNoNode) {
		t.Errorf("Distance(0, %d) error = %v, want ErrNoNode", max+1, err)
	}
	if _, err := NodeMemory(-1); !errors.Is(err, ErrNoNode) {
		t.Errorf("NodeMemory(-1) error = %v, want ErrNoNode", err)
	}
}

func TestBind(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("no NUMA on this machine: %v", err)
	}
	b, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	if err := Bind(b, 0); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("mbind refused here (seccomp?): %v", err)
		}
		t.Fatal(err)
	}
	p, err := MemPolicy(b)
	if err != nil || p.Mode != unix.MPOL_BIND || !slices.Equal(p.Nodes, []int{0}) {
		t.Fatalf("after Bind(0): MemPolicy = %+v, %v", p, err)
	}
	if n, err := PageNodes([]unsafe.Pointer{unsafe.Pointer(&b[0])}); err != nil || !slices.Equal(n, []int{-int(unix.ENOENT)}) {
		t.Fatalf("PageNodes of an untouched page = %v, %v; want [-ENOENT]", n, err)
	}
	b[0] = 1
	if n, err := PageNode(b); err != nil || n != 0 {
		t.Fatalf("after Bind(0) and a touch: PageNode = %d, %v; want node 0", n, err)
	}
	if n, err := PageNodes([]unsafe.Pointer{unsafe.Pointer(&b[0])}); err != nil || !slices.Equal(n, []int{0}) {
		t.Fatalf("after Bind(0) and a touch: PageNodes = %v, %v; want [0]", n, err)
	}
	// Pages touched before Bind are moved, not left where they are.
	b[1<<12] = 1
	if err := Bind(b, 0); err != nil {
		t.Fatalf("Bind over touched pages: %v", err)
	}
	// A node that does not exist: the kernel answers EINVAL (mbind(2): no
	// node of the mask is online and holds memory).
	if err := Bind(b, 1000); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Bind to node 1000: %v, want EINVAL", err)
	}
}

func TestNodes(t *testing.T) {
	want, err := SysFS{}.Nodes()
	got, err2 := Nodes()
	if errors.Is(err, ErrNoNUMA) {
		if !errors.Is(err2, ErrNoNUMA) {
			t.Fatalf("Nodes() = %v, %v on a kernel without NUMA", got, err2)
		}
		return
	}
	if err != nil || err2 != nil || !slices.Equal(got, want) {
		t.Fatalf("Nodes() = %v, %v; sysfs node/online %v, %v", got, err2, want, err)
	}
}

func TestAllowedCPUs(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpus, err := AllowedCPUs()
	if err != nil || len(cpus) != set.Count() {
		t.Fatalf("AllowedCPUs() = %v, %v; affinity has %d cpus", cpus, err, set.Count())
	}
}
