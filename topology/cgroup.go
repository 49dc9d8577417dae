package topology

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// CGroup is what the process's control group lets it use, as the kernel's
// cgroup files say: a container's cpuset, CPU quota, memory and huge page
// limits. Kubernetes puts a Guaranteed pod's container in a cgroup whose
// cpuset holds its exclusive CPUs (static CPU Manager) and, with the Memory
// Manager, whose cpuset.mems holds its NUMA node.
//
// The unified hierarchy (cgroup v2) is read; a controller mounted on a v1
// hierarchy instead, as on hybrid hosts, is read there.
type CGroup struct {
	// Version is 2 when every controller read was on the unified hierarchy,
	// 1 when at least one was on a v1 hierarchy.
	Version int
	// Path is the process's cgroup: the unified hierarchy's path, else the
	// v1 memory or cpuset controller's.
	Path string
	// CPUs is cpuset.cpus.effective, the CPUs the cgroup may run on; nil
	// when no cpuset controller is visible. sched_getaffinity (Allowed) is
	// never wider than this.
	CPUs []int
	// Mems is cpuset.mems.effective, the nodes the cgroup's memory may come
	// from; nil when no cpuset controller is visible.
	Mems []int
	// CPUQuota is the tightest cpu.max (quota / period) from the process's
	// cgroup up to the root: how many CPUs' worth of time the cgroup gets
	// per period. 0 means no quota.
	CPUQuota float64
	// MemoryMax is the tightest memory.max from the process's cgroup up to
	// the root, in bytes. 0 means no limit.
	MemoryMax int64
	// HugeTLB lists the hugetlb limits that are set, one per page size.
	HugeTLB []HugeTLBLimit
}

// HugeTLBLimit is a cgroup's hugetlb.<size>.max: how many bytes of huge pages
// of SizeKB the cgroup may fault in. Kubernetes sets it to the pod's
// hugepages-<size> request.
type HugeTLBLimit struct {
	SizeKB uint64
	Max    int64
}

// QuotaCPUs is the CPU quota rounded up to whole CPUs, as the Go runtime
// rounds it for GOMAXPROCS: 0 when there is no quota.
func (g *CGroup) QuotaCPUs() int {
	if g == nil || g.CPUQuota <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(g.CPUQuota-1e-9)))
}

// ReadCGroup reads the control group of this process from the files under
// root ("" means "/"): /proc/self/cgroup, /proc/self/mountinfo and the cgroup
// file systems they name. Tests pass a fake tree. It returns nil and no error
// when no cgroup file system holding the process is mounted.
func ReadCGroup(root string) (*CGroup, error) {
	if root == "" {
		root = "/"
	}
	b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return nil, fmt.Errorf("topology: cgroup: %w", err)
	}
	lines, err := ParseProcCGroup(b)
	if err != nil {
		return nil, err
	}
	if b, err = os.ReadFile(filepath.Join(root, "proc/self/mountinfo")); err != nil {
		return nil, fmt.Errorf("topology: cgroup: %w", err)
	}
	mounts, err := ParseCGroupMounts(b)
	if err != nil {
		return nil, err
	}
	r := cgroupReader{root: root, lines: lines, mounts: mounts}
	return r.read()
}

// CGroupLine is one line of /proc/self/cgroup: the hierarchy id, its v1
// controllers (none on the unified hierarchy, id 0) and the path.
type CGroupLine struct {
	ID          int
	Controllers []string
	Path        string
}

// ParseProcCGroup parses /proc/PID/cgroup ("0::/kubepods/pod1/ctr",
// "4:memory:/docker/abc").
func ParseProcCGroup(b []byte) ([]CGroupLine, error) {
	var out []CGroupLine
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("topology: cgroup: bad /proc/self/cgroup line %q", line)
		}
		id, err := strconv.Atoi(f[0])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("topology: cgroup: bad hierarchy id in %q", line)
		}
		l := CGroupLine{ID: id, Path: f[2]}
		if f[1] != "" {
			l.Controllers = strings.Split(f[1], ",")
		}
		out = append(out, l)
	}
	return out, nil
}

// CGroupMount is a mounted cgroup file system from /proc/self/mountinfo: the
// cgroup it shows (Root), where (Point), the version, and for v1 the
// controllers it carries.
type CGroupMount struct {
	Root        string
	Point       string
	Version     int
	Controllers []string
}

// ParseCGroupMounts returns the cgroup and cgroup2 mounts listed in a
// /proc/PID/mountinfo (proc(5)); other mounts are skipped.
func ParseCGroupMounts(b []byte) ([]CGroupMount, error) {
	var out []CGroupMount
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		sep := slices.Index(f, "-")
		if sep < 6 || sep+2 >= len(f) {
			return nil, fmt.Errorf("topology: cgroup: bad mountinfo line %q", strings.TrimSpace(line))
		}
		m := CGroupMount{Root: unescapeMount(f[3]), Point: unescapeMount(f[4])}
		switch f[sep+1] {
		case "cgroup2":
			m.Version = 2
		case "cgroup":
			m.Version = 1
			if sep+3 < len(f) {
				for o := range strings.SplitSeq(f[sep+3], ",") {
					if o != "rw" && o != "ro" && !strings.Contains(o, "=") {
						m.Controllers = append(m.Controllers, o)
					}
				}
			}
		default:
			continue
		}
		if !strings.HasPrefix(m.Root, "/") || !strings.HasPrefix(m.Point, "/") {
			return nil, fmt.Errorf("topology: cgroup: bad mountinfo paths in %q", strings.TrimSpace(line))
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseCPUMax parses cgroup v2 cpu.max ("max 100000", "250000 100000") into
// CPUs' worth of time per period; 0 means no quota.
func ParseCPUMax(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) < 1 || len(f) > 2 {
		return 0, fmt.Errorf("topology: cgroup: bad cpu.max %q", s)
	}
	period := int64(100000) // the kernel's default when the file gives none
	if len(f) == 2 {
		p, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("topology: cgroup: bad cpu.max period %q", s)
		}
		period = p
	}
	if f[0] == "max" {
		return 0, nil
	}
	q, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || q <= 0 {
		return 0, fmt.Errorf("topology: cgroup: bad cpu.max quota %q", s)
	}
	return float64(q) / float64(period), nil
}

// parseLimit parses a byte limit: "max" (v2) or a v1 value at or above
// 1<<62 (the kernel's "unlimited", rounded to pages) are no limit, 0.
func parseLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("topology: cgroup: bad limit %q", s)
	}
	if v >= 1<<62 {
		return 0, nil
	}
	return v, nil
}

// cgroupReader finds each controller's directory for the process and reads
// its limits.
type cgroupReader struct {
	root   string
	lines  []CGroupLine
	mounts []CGroupMount
	v1     bool // a controller came from a v1 hierarchy
	found  bool // any controller's directory was found
}

// where is a controller's directory for the process: dir, and the mount
// point above which limits are not visible.
type where struct {
	dir, top string
	version  int
}

// locate finds ctrl on a v1 hierarchy, else the unified one.
func (r *cgroupReader) locate(ctrl string) (where, bool) {
	for _, m := range r.mounts {
		if m.Version != 1 || !slices.Contains(m.Controllers, ctrl) {
			continue
		}
		for _, l := range r.lines {
			if slices.Contains(l.Controllers, ctrl) {
				return r.under(m, l.Path), true
			}
		}
	}
	for _, m := range r.mounts {
		if m.Version != 2 {
			continue
		}
		for _, l := range r.lines {
			if l.ID == 0 && len(l.Controllers) == 0 {
				return r.under(m, l.Path), true
			}
		}
	}
	return where{}, false
}

// under is the directory of cgroup path p on mount m. A path outside the
// mount's root (a cgroup namespace shows "/.." for one) maps to the mount
// point itself.
func (r *cgroupReader) under(m CGroupMount, p string) where {
	rel := "/"
	switch {
	case m.Root == "/":
		rel = p
	case p == m.Root || strings.HasPrefix(p, m.Root+"/"):
		rel = strings.TrimPrefix(p, m.Root)
	}
	rel = path.Clean("/" + rel)
	if strings.HasPrefix(rel, "/..") {
		rel = "/"
	}
	top := filepath.Join(r.root, m.Point)
	return where{dir: filepath.Join(top, rel), top: top, version: m.Version}
}

func (r *cgroupReader) read() (*CGroup, error) {
	g := &CGroup{}
	for _, l := range r.lines {
		if l.ID == 0 && len(l.Controllers) == 0 {
			g.Path = l.Path
		}
	}
	steps := []func(*CGroup) error{r.cpuset, r.cpu, r.memory, r.hugetlb}
	for _, step := range steps {
		if err := step(g); err != nil {
			return nil, err
		}
	}
	if !r.found {
		return nil, nil
	}
	g.Version = 2
	if r.v1 {
		g.Version = 1
	}
	return g, nil
}

// file reads name in dir; ok is false when the file does not exist (the
// controller is not enabled there).
func (r *cgroupReader) file(dir, name string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("topology: cgroup: %w", err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// use records that controller w was found.
func (r *cgroupReader) use(w where, g *CGroup, p string) {
	r.found = true
	if w.version == 1 {
		r.v1 = true
		if g.Path == "" {
			g.Path = p
		}
	}
}

func (r *cgroupReader) cpuset(g *CGroup) error {
	w, ok := r.locate("cpuset")
	if !ok {
		return nil
	}
	cpus, mems := "cpuset.cpus.effective", "cpuset.mems.effective"
	if w.version == 1 {
		cpus, mems = "cpuset.effective_cpus", "cpuset.effective_mems"
	}
	c, okc, err := r.file(w.dir, cpus)
	if err != nil {
		return err
	}
	m, okm, err := r.file(w.dir, mems)
	if err != nil || !okc || !okm {
		return err
	}
	if g.CPUs, err = cnuma.ParseCPUList(c); err != nil {
		return fmt.Errorf("topology: cgroup %s: %w", cpus, err)
	}
	if g.Mems, err = cnuma.ParseCPUList(m); err != nil {
		return fmt.Errorf("topology: cgroup %s: %w", mems, err)
	}
	r.use(w, g, r.pathOf("cpuset"))
	return nil
}

func (r *cgroupReader) cpu(g *CGroup) error {
	w, ok := r.locate("cpu")
	if !ok {
		return nil
	}
	return r.walkUp(w, func(dir string) error {
		q, err := r.quotaAt(w, dir)
		if err != nil || q < 0 {
			return err
		}
		if q > 0 && (g.CPUQuota == 0 || q < g.CPUQuota) {
			g.CPUQuota = q
		}
		r.use(w, g, r.pathOf("cpu"))
		return nil
	})
}

// quotaAt reads the CPU quota in dir: -1 when the files are not there.
func (r *cgroupReader) quotaAt(w where, dir string) (float64, error) {
	if w.version == 2 {
		s, ok, err := r.file(dir, "cpu.max")
		if err != nil || !ok {
			return -1, err
		}
		return ParseCPUMax(s)
	}
	qs, okq, err := r.file(dir, "cpu.cfs_quota_us")
	if err != nil {
		return -1, err
	}
	ps, okp, err := r.file(dir, "cpu.cfs_period_us")
	if err != nil || !okq || !okp {
		return -1, err
	}
	if qs == "-1" {
		return 0, nil
	}
	return ParseCPUMax(qs + " " + ps)
}

func (r *cgroupReader) memory(g *CGroup) error {
	w, ok := r.locate("memory")
	if !ok {
		return nil
	}
	name := "memory.max"
	if w.version == 1 {
		name = "memory.limit_in_bytes"
	}
	return r.walkUp(w, func(dir string) error {
		s, ok, err := r.file(dir, name)
		if err != nil || !ok {
			return err
		}
		v, err := parseLimit(s)
		if err != nil {
			return fmt.Errorf("%w in %s", err, filepath.Join(dir, name))
		}
		if v > 0 && (g.MemoryMax == 0 || v < g.MemoryMax) {
			g.MemoryMax = v
		}
		r.use(w, g, r.pathOf("memory"))
		return nil
	})
}

func (r *cgroupReader) hugetlb(g *CGroup) error {
	w, ok := r.locate("hugetlb")
	if !ok {
		return nil
	}
	suffix := ".max"
	if w.version == 1 {
		suffix = ".limit_in_bytes"
	}
	limits := map[uint64]int64{}
	err := r.walkUp(w, func(dir string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil // an ancestor we may not list: nothing to read there
		}
		for _, e := range ents {
			size, ok := hugetlbFile(e.Name(), suffix)
			if !ok {
				continue
			}
			s, _, err := r.file(dir, e.Name())
			if err != nil {
				return err
			}
			v, err := parseLimit(s)
			if err != nil {
				return fmt.Errorf("%w in %s", err, filepath.Join(dir, e.Name()))
			}
			if v > 0 && (limits[size] == 0 || v < limits[size]) {
				limits[size] = v
			}
			r.use(w, g, r.pathOf("hugetlb"))
		}
		return nil
	})
	for size, v := range limits {
		if v > 0 {
			g.HugeTLB = append(g.HugeTLB, HugeTLBLimit{SizeKB: size, Max: v})
		}
	}
	slices.SortFunc(g.HugeTLB, func(a, b HugeTLBLimit) int { return cmp.Compare(a.SizeKB, b.SizeKB) })
	return err
}

// hugetlbFile returns the page size in kB of a hugetlb.<size><suffix> file
// name ("hugetlb.2MB.max" is 2048); the rsvd files are not limits on faults
// and are skipped.
func hugetlbFile(name, suffix string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "hugetlb.")
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, suffix); !ok || strings.Contains(s, ".") {
		return 0, false
	}
	for unit, kb := range map[string]uint64{"KB": 1, "MB": 1 << 10, "GB": 1 << 20} {
		if n, ok := strings.CutSuffix(s, unit); ok {
			v, err := strconv.ParseUint(n, 10, 32)
			if err != nil || v == 0 {
				return 0, false
			}
			return v * kb, true
		}
	}
	return 0, false
}

// walkUp calls fn for w's directory and each parent up to the mount point:
// a limit set on an ancestor binds as well (visible where there is no
// cgroup namespace).
func (r *cgroupReader) walkUp(w where, fn func(dir string) error) error {
	for dir := w.dir; ; dir = filepath.Dir(dir) {
		if err := fn(dir); err != nil {
			return err
		}
		if dir == w.top || len(dir) <= len(w.top) {
			return nil
		}
	}
}

// pathOf is the process's cgroup path for a v1 controller.
func (r *cgroupReader) pathOf(ctrl string) string {
	for _, l := range r.lines {
		if slices.Contains(l.Controllers, ctrl) {
			return l.Path
		}
	}
	return ""
}
