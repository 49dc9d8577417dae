//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// machine is the kernel's view of the NUMA nodes, read from
// /sys/devices/system/node: what every check compares the server with.
type machine struct {
	nodes   []int
	cpus    map[int][]int // node -> its CPUs
	memKB   map[int]int64 // node -> MemTotal
	dist    map[int][]int // node -> distance row
	cpuNode map[int]int   // CPU -> its node
}

const nodeDir = "/sys/devices/system/node"

func readMachine() (*machine, error) {
	online, err := readString(filepath.Join(nodeDir, "online"))
	if err != nil {
		return nil, err
	}
	nodes, err := parseCPUList(online)
	if err != nil {
		return nil, fmt.Errorf("node/online: %w", err)
	}
	m := &machine{nodes: nodes, cpus: map[int][]int{}, memKB: map[int]int64{},
		dist: map[int][]int{}, cpuNode: map[int]int{}}
	for _, n := range nodes {
		dir := filepath.Join(nodeDir, fmt.Sprintf("node%d", n))
		s, err := readString(filepath.Join(dir, "cpulist"))
		if err != nil {
			return nil, err
		}
		if m.cpus[n], err = parseCPUList(s); err != nil {
			return nil, fmt.Errorf("node%d/cpulist: %w", n, err)
		}
		for _, c := range m.cpus[n] {
			m.cpuNode[c] = n
		}
		s, err = readString(filepath.Join(dir, "distance"))
		if err != nil {
			return nil, err
		}
		for _, f := range strings.Fields(s) {
			d, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("node%d/distance: %w", n, err)
			}
			m.dist[n] = append(m.dist[n], d)
		}
		if m.memKB[n], err = nodeMemTotalKB(dir); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// nodeMemTotalKB reads "Node 0 MemTotal: 1015012 kB" from nodeN/meminfo.
func nodeMemTotalKB(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meminfo"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "MemTotal:" {
			return strconv.ParseInt(f[3], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s/meminfo: no MemTotal", dir)
}

// hugeKnob is node n's count of reserved 2 MiB pages.
func hugeKnob(n int, what string) string {
	return filepath.Join(nodeDir, fmt.Sprintf("node%d", n), "hugepages/hugepages-2048kB", what)
}

func readInt(path string) (int, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// parseCPUList parses the kernel's list format: "0-1,4,6-7".
func parseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

func formatList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// thread is one task of a process, as /proc/PID/task/TID shows it.
type thread struct {
	tid     int
	comm    string
	allowed []int // Cpus_allowed_list
	lastCPU int   // field 39 of stat: the CPU it last ran on
}

func threads(pid int) ([]thread, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []thread
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		t := thread{tid: tid, lastCPU: -1}
		t.comm, _ = readString(filepath.Join(dir, e.Name(), "comm"))
		st, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				t.allowed, _ = parseCPUList(strings.TrimSpace(v))
			}
		}
		if s, err := readString(filepath.Join(dir, e.Name(), "stat")); err == nil {
			// comm may hold spaces: count fields after its closing ')'.
			if i := strings.LastIndexByte(s, ')'); i >= 0 {
				f := strings.Fields(s[i+1:])
				if len(f) > 36 { // field 39 overall = index 36 after pid and comm
					t.lastCPU, _ = strconv.Atoi(f[36])
				}
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].comm < out[j].comm })
	return out, nil
}

// mapping is one VMA of /proc/PID/numa_maps joined with its smaps entry.
type mapping struct {
	start    uint64
	policy   string        // "bind:1", "default", ...
	pages    map[int]int64 // node -> pages (of kernelPageKB) there
	huge     bool          // hugetlb mapping
	pageKB   int64         // kernelpagesize_kB
	sizeKB   int64         // smaps Size
	anonHuge int64         // smaps AnonHugePages, kB
	raw      string        // the numa_maps line
}

// kind names the page kind the way the server's log does.
func (m mapping) kind() string {
	switch {
	case m.huge || m.pageKB == 2048:
		return "hugetlb"
	case m.anonHuge > 0:
		return "thp"
	default:
		return "normal"
	}
}

func (m mapping) pagesOn(node int) int64 { return m.pages[node] }

func (m mapping) totalPages() int64 {
	var n int64
	for _, v := range m.pages {
		n += v
	}
	return n
}

// describe prints the placement: "N1=38 (76 MiB)".
func (m mapping) describe() string {
	var nodes []int
	for n := range m.pages {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	var parts []string
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("N%d=%d", n, m.pages[n]))
	}
	pk := m.pageKB
	if pk == 0 {
		pk = 4
	}
	s := fmt.Sprintf("%#x %s %s, %d MiB mapped, pages %s (%d MiB present, %d KiB each)",
		m.start, m.policy, m.kind(), m.sizeKB/1024, strings.Join(parts, " "), m.totalPages()*pk/1024, pk)
	if m.anonHuge > 0 {
		s += fmt.Sprintf(", AnonHugePages %d MiB", m.anonHuge/1024)
	}
	return s
}

// boundMappings returns the VMAs with an MPOL_BIND policy: in the echo
// server only the buffer pools' arenas are mbind-ed.
func boundMappings(pid int) ([]mapping, error) {
	smaps, err := readSmaps(pid)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/numa_maps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.HasPrefix(fields[1], "bind") {
			continue
		}
		start, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			continue
		}
		m := mapping{start: start, policy: fields[1], pages: map[int]int64{}, raw: sc.Text()}
		for _, tok := range fields[2:] {
			k, v, _ := strings.Cut(tok, "=")
			switch {
			case tok == "huge":
				m.huge = true
			case k == "kernelpagesize_kB":
				m.pageKB, _ = strconv.ParseInt(v, 10, 64)
			case len(k) > 1 && k[0] == 'N':
				if n, err := strconv.Atoi(k[1:]); err == nil {
					m.pages[n], _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
		if s, ok := smaps[start]; ok {
			m.sizeKB, m.anonHuge = s.sizeKB, s.anonHugeKB
			if m.pageKB == 0 {
				m.pageKB = s.pageKB
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// policyNode returns N for "bind:N" (6.1) or "bind=static:N" (later
// kernels print mode flags), -1 for anything else.
func (m mapping) policyNode() int {
	_, v, ok := strings.Cut(m.policy, ":")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

type smapsEntry struct{ sizeKB, anonHugeKB, pageKB int64 }

func readSmaps(pid int) (map[uint64]smapsEntry, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[uint64]smapsEntry{}
	var cur uint64
	var e smapsEntry
	have := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a header: "7f..-7f.. rw-p ..."
			if have {
				out[cur] = e
			}
			lo, _, _ := strings.Cut(f[0], "-")
			cur, _ = strconv.ParseUint(lo, 16, 64)
			e, have = smapsEntry{}, true
			continue
		}
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Size:":
			e.sizeKB = v
		case "AnonHugePages:":
			e.anonHugeKB = v
		case "KernelPageSize:":
			e.pageKB = v
		}
	}
	if have {
		out[cur] = e
	}
	return out, sc.Err()
}
