//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// checkGuest compares the kernel's nodes with what qemu was asked for, so
// that a wrong guest fails here and not as a puzzling server failure.
func checkGuest(m *machine, o *options) error {
	if o.wantCPUs != "" {
		want := strings.Split(o.wantCPUs, ";")
		if len(m.nodes) != len(want) {
			return fmt.Errorf("%d nodes online (%v), want %d", len(m.nodes), m.nodes, len(want))
		}
		for i, w := range want {
			cpus, err := parseCPUList(w)
			if err != nil {
				return fmt.Errorf("-want-cpus: %w", err)
			}
			if !slices.Equal(m.cpus[m.nodes[i]], cpus) {
				return fmt.Errorf("node %d: cpus %v, want %v", m.nodes[i], m.cpus[m.nodes[i]], cpus)
			}
		}
	}
	if o.wantDist != "" {
		for i, w := range strings.Split(o.wantDist, ";") {
			if i >= len(m.nodes) {
				return fmt.Errorf("-want-dist has more rows than the %d nodes", len(m.nodes))
			}
			if got := formatList(m.dist[m.nodes[i]]); got != w {
				return fmt.Errorf("node %d: distances %s, want %s", m.nodes[i], got, w)
			}
		}
	}
	for _, n := range m.nodes {
		if m.memKB[n] == 0 {
			return fmt.Errorf("node %d has no memory", n)
		}
	}
	return nil
}

func guestFigures(m *machine) []string {
	var out []string
	for _, n := range m.nodes {
		out = append(out, fmt.Sprintf("node %d: cpus %s, MemTotal %d MiB, distances %s",
			n, formatList(m.cpus[n]), m.memKB[n]/1024, formatList(m.dist[n])))
	}
	return out
}

// topoJSON is the part of echo's topo/v1 report the check compares.
type topoJSON struct {
	Schema string `json:"schema"`
	Source string `json:"source"`
	Nodes  []struct {
		ID        int   `json:"id"`
		CPUs      []int `json:"cpus"`
		Memory    int64 `json:"memory_bytes"`
		Distances []int `json:"distances"`
		HugePages map[string]struct {
			Total int `json:"total"`
		} `json:"hugepages"`
	} `json:"numa_nodes"`
	Plan struct {
		Nodes []int `json:"nodes"`
		Loops []struct {
			ID   int `json:"id"`
			CPU  int `json:"cpu"`
			Node int `json:"node"`
		} `json:"loops"`
	} `json:"plan"`
}

// checkTopology: `echo -topology -json` against /sys/devices/system/node.
func checkTopology(r *report, m *machine, bin string) {
	name := label(bin) + " -topology -json agrees with the kernel"
	out, err := exec.Command(bin, "-topology", "-json", "-addr", "127.0.0.1:0").Output()
	if err != nil {
		r.fail(name, fmt.Errorf("%v: %s", err, stderrOf(err)))
		return
	}
	var t topoJSON
	if err := json.Unmarshal(out, &t); err != nil {
		r.fail(name, fmt.Errorf("bad JSON: %v", err))
		return
	}
	var figures []string
	var errs []error
	ids := make([]int, len(t.Nodes))
	for i, n := range t.Nodes {
		ids[i] = n.ID
	}
	if !slices.Equal(ids, m.nodes) {
		errs = append(errs, fmt.Errorf("nodes %v, kernel %v", ids, m.nodes))
	}
	for _, n := range t.Nodes {
		kb := m.memKB[n.ID]
		figures = append(figures, fmt.Sprintf("node %d: cpus %s (kernel %s), memory %d MiB (kernel %d MiB), distances %s (kernel %s), 2 MiB pages %d",
			n.ID, formatList(n.CPUs), formatList(m.cpus[n.ID]), n.Memory>>20, kb>>10,
			formatList(n.Distances), formatList(m.dist[n.ID]), n.HugePages["2048kB"].Total))
		if !slices.Equal(n.CPUs, m.cpus[n.ID]) {
			errs = append(errs, fmt.Errorf("node %d: cpus %v, kernel %v", n.ID, n.CPUs, m.cpus[n.ID]))
		}
		if !slices.Equal(n.Distances, m.dist[n.ID]) {
			errs = append(errs, fmt.Errorf("node %d: distances %v, kernel %v", n.ID, n.Distances, m.dist[n.ID]))
		}
		if n.Memory <= 0 || abs(n.Memory-kb*1024) > kb*1024/50 {
			errs = append(errs, fmt.Errorf("node %d: memory %d B, kernel MemTotal %d kB (more than 2%% apart)", n.ID, n.Memory, kb))
		}
		if want, _ := readInt(hugeKnob(n.ID, "nr_hugepages")); n.HugePages["2048kB"].Total != want {
			errs = append(errs, fmt.Errorf("node %d: %d huge pages, kernel %d", n.ID, n.HugePages["2048kB"].Total, want))
		}
	}
	var loops []string
	for _, l := range t.Plan.Loops {
		loops = append(loops, fmt.Sprintf("%d:cpu%d/node%d", l.ID, l.CPU, l.Node))
		if node, ok := m.cpuNode[l.CPU]; !ok || node != l.Node {
			errs = append(errs, fmt.Errorf("plan loop %d: cpu %d on node %d, kernel says node %d", l.ID, l.CPU, l.Node, node))
		}
	}
	if len(t.Plan.Loops) != len(m.cpuNode) {
		errs = append(errs, fmt.Errorf("-numa=auto plan has %d loops, machine has %d CPUs", len(t.Plan.Loops), len(m.cpuNode)))
	}
	figures = append(figures, fmt.Sprintf("source %s; -numa=auto plan: nodes %v, loops %s", t.Source, t.Plan.Nodes, strings.Join(loops, " ")))
	r.result(name, errors.Join(errs...), figures...)
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// loopSpec is one "ws: loop" log line: where the server placed loop N.
type loopSpec struct{ cpu, node int }

func loopSpecs(s *server) map[int]loopSpec {
	out := map[int]loopSpec{}
	for _, l := range s.findAll("ws: loop") {
		i, _ := strconv.Atoi(logValue(l, "loop"))
		cpu, _ := strconv.Atoi(logValue(l, "cpu"))
		node, _ := strconv.Atoi(logValue(l, "node"))
		out[i] = loopSpec{cpu, node}
	}
	return out
}

// checkLoops finds the reactor-N threads and checks that each is pinned to
// exactly the CPU its "ws: loop" line names, that the CPU is on that node,
// and that the loops cover wantCPUs. Threads are named just after they
// start, so it retries for a few seconds.
func checkLoops(s *server, m *machine, wantCPUs []int) ([]string, error) {
	var figures []string
	var err error
	for try := 0; try < 50; try++ {
		figures, err = loopsOnce(s, m, wantCPUs)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return figures, err
}

func loopsOnce(s *server, m *machine, wantCPUs []int) ([]string, error) {
	specs := loopSpecs(s)
	ts, err := threads(s.pid())
	if err != nil {
		return nil, err
	}
	var figures []string
	var errs []error
	var covered []int
	seen := 0
	for _, t := range ts {
		idxStr, ok := strings.CutPrefix(t.comm, "reactor-")
		if !ok {
			continue
		}
		seen++
		idx, _ := strconv.Atoi(idxStr)
		spec, ok := specs[idx]
		if !ok {
			errs = append(errs, fmt.Errorf("thread %s has no \"ws: loop\" line", t.comm))
			continue
		}
		figures = append(figures, fmt.Sprintf("%s tid %d: Cpus_allowed_list %s (node %s), last ran on cpu %d (node %s); planned cpu %d node %d",
			t.comm, t.tid, formatList(t.allowed), nodesOf(m, t.allowed), t.lastCPU, nodesOf(m, []int{t.lastCPU}), spec.cpu, spec.node))
		if !slices.Equal(t.allowed, []int{spec.cpu}) {
			errs = append(errs, fmt.Errorf("%s: allowed cpus %v, want only %d", t.comm, t.allowed, spec.cpu))
		}
		if m.cpuNode[spec.cpu] != spec.node {
			errs = append(errs, fmt.Errorf("%s: planned on cpu %d for node %d, but cpu %d is on node %d", t.comm, spec.cpu, spec.node, spec.cpu, m.cpuNode[spec.cpu]))
		}
		if t.lastCPU >= 0 && t.lastCPU != spec.cpu {
			errs = append(errs, fmt.Errorf("%s last ran on cpu %d, pinned to %d", t.comm, t.lastCPU, spec.cpu))
		}
		covered = append(covered, t.allowed...)
	}
	sort.Ints(covered)
	covered = slices.Compact(covered)
	if seen != len(specs) || seen != len(wantCPUs) {
		errs = append(errs, fmt.Errorf("%d reactor threads, %d \"ws: loop\" lines, want %d loops", seen, len(specs), len(wantCPUs)))
	}
	if !slices.Equal(covered, wantCPUs) {
		errs = append(errs, fmt.Errorf("loops pinned to cpus %v, want %v", covered, wantCPUs))
	}
	return figures, errors.Join(errs...)
}

func nodesOf(m *machine, cpus []int) string {
	var ns []int
	for _, c := range cpus {
		if n, ok := m.cpuNode[c]; ok && !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		return "?"
	}
	return formatList(ns)
}

// checkPools checks that the process has one bound pool per wanted node
// (all its pages on that node) and that the server's "ws: buffer pool"
// lines name the same node and page kind. wantKind "" accepts any kind.
func checkPools(s *server, wantNodes []int, wantKind map[int]string) ([]string, map[int]mapping, error) {
	ms, err := boundMappings(s.pid())
	if err != nil {
		return nil, nil, err
	}
	var figures []string
	var errs []error
	byNode := map[int]mapping{}
	for _, mp := range ms {
		n := mp.policyNode()
		figures = append(figures, "numa_maps: "+mp.describe())
		if _, dup := byNode[n]; dup {
			errs = append(errs, fmt.Errorf("two mappings bound to node %d", n))
		}
		byNode[n] = mp
	}
	logged := map[int]string{}
	for _, l := range s.findAll("ws: buffer pool") {
		n, _ := strconv.Atoi(logValue(l, "node"))
		logged[n] = logValue(l, "pages")
		figures = append(figures, "log: "+strings.TrimSpace(l[strings.Index(l, "msg="):]))
	}
	for _, l := range s.findAll("ws: no buffer pool for node; its loops use the Go heap") {
		errs = append(errs, fmt.Errorf("server: %s", l))
	}
	var got []int
	for n := range byNode {
		got = append(got, n)
	}
	sort.Ints(got)
	if !slices.Equal(got, wantNodes) {
		errs = append(errs, fmt.Errorf("pool mappings bound to nodes %v, want %v", got, wantNodes))
	}
	for _, n := range wantNodes {
		mp, ok := byNode[n]
		if !ok {
			continue
		}
		if mp.pagesOn(n) == 0 || mp.pagesOn(n) != mp.totalPages() {
			errs = append(errs, fmt.Errorf("pool bound to node %d has pages elsewhere: %s", n, mp.raw))
		}
		if logged[n] != mp.kind() {
			errs = append(errs, fmt.Errorf("node %d: the log says pages=%q, smaps/numa_maps say %s", n, logged[n], mp.kind()))
		}
		if w := wantKind[n]; w != "" && !strings.Contains(w, mp.kind()) {
			errs = append(errs, fmt.Errorf("node %d: pool pages are %s, want %s", n, mp.kind(), w))
		}
	}
	return figures, byNode, errors.Join(errs...)
}

// checkEcho runs WebSocket clients against the server and reports which
// loops (and so which nodes) served them, from the "ws: open" lines.
func checkEcho(s *server, conns int) ([]string, error) {
	t0 := time.Now()
	n, err := echoClients(s.addr, conns, 90*time.Second)
	figures := []string{fmt.Sprintf("%d connections to %s, %d messages echoed intact (%d sizes 0 B..1 MiB, text and binary) in %.1fs",
		conns, s.addr, n, len(echoSizes), time.Since(t0).Seconds())}
	if err != nil {
		return figures, err
	}
	specs := loopSpecs(s)
	served := map[int]int{}
	for try := 0; try < 20; try++ {
		clear(served)
		opens := s.findAll("ws: open")
		for _, l := range opens {
			i, _ := strconv.Atoi(logValue(l, "loop"))
			served[i]++
		}
		if len(opens) >= conns {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var idx []int
	for i := range served {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var parts []string
	for _, i := range idx {
		parts = append(parts, fmt.Sprintf("loop %d (cpu %d, node %d): %d", i, specs[i].cpu, specs[i].node, served[i]))
	}
	figures = append(figures, "connections per loop: "+strings.Join(parts, ", "))
	if n != conns*len(echoSizes)*2 {
		err = fmt.Errorf("%d of %d messages echoed", n, conns*len(echoSizes)*2)
	}
	return figures, err
}

// checkOneNode: `echo -numa=N` keeps its loops and pool on node N.
func checkOneNode(r *report, m *machine, bin string, node int, start time.Duration) {
	pre := fmt.Sprintf("%s -numa=%d", label(bin), node)
	s, err := startServer(bin, start, fmt.Sprintf("-numa=%d", node), "-addr", "127.0.0.1:0", "-stats", "0", "-shutdown-timeout", "2s")
	if err != nil {
		r.fail(pre+" starts", err)
		return
	}
	fig, err := checkLoops(s, m, m.cpus[node])
	if l, ok := s.find("ws: plan"); ok {
		fig = append([]string{"log: " + l[strings.Index(l, "msg="):]}, fig...)
	}
	r.result(fmt.Sprintf("%s: loops pinned to node %d's cpus %s", pre, node, formatList(m.cpus[node])), err, fig...)
	fig, _, err = checkPools(s, []int{node}, nil)
	r.result(fmt.Sprintf("%s: pool memory bound to node %d, every page on node %d", pre, node, node), err, fig...)
	fig, err = checkEcho(s, 8)
	r.result(pre+": WebSocket echo", err, fig...)
	r.result(pre+": graceful shutdown on SIGTERM, exit 0", s.stop(10*time.Second))
}

// checkAuto: `echo -numa=auto` on a loopback address runs one group of
// loops per node, each with its own node's pool.
func checkAuto(r *report, m *machine, bin string, start time.Duration) {
	pre := label(bin) + " -numa=auto"
	s, err := startServer(bin, start, "-numa=auto", "-addr", "127.0.0.1:0", "-stats", "0", "-shutdown-timeout", "2s")
	if err != nil {
		r.fail(pre+" starts", err)
		return
	}
	var all []int
	for _, n := range m.nodes {
		all = append(all, m.cpus[n]...)
	}
	sort.Ints(all)
	fig, err := checkLoops(s, m, all)
	r.result(fmt.Sprintf("%s: a loop group per node, %d loops, each pinned to a cpu of its node", pre, len(all)), err, fig...)
	fig, _, err = checkPools(s, m.nodes, nil)
	r.result(pre+": one pool per node, each bound to and placed on its node", err, fig...)
	fig, err = checkEcho(s, 8)
	r.result(pre+": WebSocket echo", err, fig...)
	r.result(pre+": graceful shutdown on SIGTERM, exit 0", s.stop(10*time.Second))
}

// checkHugePages reserves 2 MiB pages on the last node only. A server
// bound to the first node must not take them (mmap succeeds because the
// reservation is global, the first touch would SIGBUS): it falls back and
// says so. A server on the last node gets hugetlb pages from there.
func checkHugePages(r *report, m *machine, bin string, o *options) {
	first, last := m.nodes[0], m.nodes[len(m.nodes)-1]
	old := map[int]string{}
	for _, n := range m.nodes {
		old[n], _ = readString(hugeKnob(n, "nr_hugepages"))
	}
	defer func() {
		for n, v := range old {
			_ = setFile(hugeKnob(n, "nr_hugepages"), v)
		}
	}()
	var errs []error
	for _, n := range m.nodes {
		want := 0
		if n == last {
			want = o.hugePages
		}
		if err := setFile(hugeKnob(n, "nr_hugepages"), strconv.Itoa(want)); err != nil {
			errs = append(errs, err)
		}
	}
	var fig []string
	for _, n := range m.nodes {
		nr, _ := readInt(hugeKnob(n, "nr_hugepages"))
		free, _ := readInt(hugeKnob(n, "free_hugepages"))
		fig = append(fig, fmt.Sprintf("node %d: nr_hugepages %d, free %d", n, nr, free))
		if want := map[bool]int{true: o.hugePages}[n == last]; nr != want {
			errs = append(errs, fmt.Errorf("node %d: %d huge pages reserved, want %d", n, nr, want))
		}
	}
	name := fmt.Sprintf("huge pages: %d reserved on node %d only", o.hugePages, last)
	r.result(name, errors.Join(errs...), fig...)
	if len(errs) > 0 {
		return
	}

	// Asked for the first node: no huge pages there.
	pre := fmt.Sprintf("%s -numa=%d with huge pages on node %d only", label(bin), first, last)
	s, err := startServer(bin, o.start, fmt.Sprintf("-numa=%d", first), "-addr", "127.0.0.1:0", "-stats", "0", "-shutdown-timeout", "2s")
	if err != nil {
		r.fail(pre+": starts (no SIGBUS)", err)
	} else {
		fig, _, err := checkPools(s, []int{first}, map[int]string{first: "thp normal"})
		errs := []error{err}
		l, _ := s.find("ws: buffer pool")
		if fb := logValue(l, "fallbacks"); !strings.Contains(fb, "hugetlb") {
			errs = append(errs, fmt.Errorf("the pool line names no hugetlb fallback: fallbacks=%q", fb))
		}
		if free, _ := readInt(hugeKnob(last, "free_hugepages")); free != o.hugePages {
			errs = append(errs, fmt.Errorf("node %d: %d huge pages free while the node-%d server runs, want all %d", last, free, first, o.hugePages))
		}
		r.result(pre+": falls back from hugetlb and says so", errors.Join(errs...), fig...)
		efig, err := checkEcho(s, 4)
		if err == nil && !s.alive() {
			err = fmt.Errorf("server died: %v", s.exitErr())
		}
		r.result(pre+": serves echo, no SIGBUS", err, efig...)
		r.result(pre+": graceful shutdown on SIGTERM, exit 0", s.stop(10*time.Second))
	}

	// Asked for the last node: hugetlb from there.
	pre = fmt.Sprintf("%s -numa=%d with huge pages on node %d", label(bin), last, last)
	s, err = startServer(bin, o.start, fmt.Sprintf("-numa=%d", last), "-addr", "127.0.0.1:0", "-stats", "0", "-shutdown-timeout", "2s")
	if err != nil {
		r.fail(pre+": starts", err)
		return
	}
	fig, byNode, err := checkPools(s, []int{last}, map[int]string{last: "hugetlb"})
	errs = []error{err}
	free, _ := readInt(hugeKnob(last, "free_hugepages"))
	taken := int64(o.hugePages - free)
	fig = append(fig, fmt.Sprintf("node %d: %d of %d huge pages now in use", last, taken, o.hugePages))
	if mp, ok := byNode[last]; ok && mp.kind() == "hugetlb" && mp.pagesOn(last) != taken {
		errs = append(errs, fmt.Errorf("numa_maps shows %d huge pages on node %d, the node's free count dropped by %d", mp.pagesOn(last), last, taken))
	}
	r.result(pre+": gets hugetlb pages on node "+strconv.Itoa(last), errors.Join(errs...), fig...)
	efig, err := checkEcho(s, 4)
	r.result(pre+": WebSocket echo", err, efig...)
	r.result(pre+": graceful shutdown on SIGTERM, exit 0", s.stop(10*time.Second))

	// Both at once: one process, a pool per node, each with what its node has.
	pre = fmt.Sprintf("%s -numa=auto with huge pages on node %d only", label(bin), last)
	s, err = startServer(bin, o.start, "-numa=auto", "-addr", "127.0.0.1:0", "-stats", "0", "-shutdown-timeout", "2s")
	if err != nil {
		r.fail(pre+": starts", err)
		return
	}
	want := map[int]string{}
	for _, n := range m.nodes {
		want[n] = "thp normal"
	}
	want[last] = "hugetlb"
	fig, _, err = checkPools(s, m.nodes, want)
	r.result(fmt.Sprintf("%s: hugetlb pool on node %d, fallback pools elsewhere, each on its node", pre, last), err, fig...)
	efig, err = checkEcho(s, 8)
	r.result(pre+": WebSocket echo", err, efig...)
	r.result(pre+": graceful shutdown on SIGTERM, exit 0", s.stop(10*time.Second))
}
