package topology

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// Schema is the value of the "schema" field of WriteJSON's output.
const Schema = "topo/v1"

// WriteText writes a report for people: the machine, the CPUs this process may
// use, and, when p is not nil, the plan.
func WriteText(w io.Writer, t *Topology, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "topology (%s): %d numa node(s), %d package(s), %d core(s), %d cpu(s) online\n",
		t.Source, len(t.Nodes), len(t.Packages), len(t.Cores), len(t.PUs))
	for _, n := range t.Nodes {
		writeNode(&b, n)
	}
	for _, pk := range t.Packages {
		fmt.Fprintf(&b, "package %d: cpus %s\n", pk.ID, cpuList(pk.CPUs))
	}
	writeCaches(&b, t.Caches)
	for _, d := range t.NICs {
		where := "no numa affinity"
		if d.Node >= 0 {
			where = "node " + strconv.Itoa(d.Node)
		}
		fmt.Fprintf(&b, "nic %s (pci %s): %s, local cpus %s\n", d.Name, orDash(d.PCI), where, cpuList(d.LocalCPUs))
	}
	if t.Allowed != nil {
		fmt.Fprintf(&b, "this process may run on cpus %s\n", cpuList(t.Allowed))
	}
	if t.CGroup != nil {
		writeCGroup(&b, t.CGroup)
	}
	a := t.Alignment()
	one := "spans nodes"
	if a.SingleNode {
		one = "one node"
	}
	fmt.Fprintf(&b, "numa alignment: cpus on node(s) %s, memory from node(s) %s: %s\n", joinInts(a.CPUNodes), joinInts(a.MemoryNodes), one)
	if !t.CanPin {
		b.WriteString("threads cannot be pinned here\n")
	}
	for _, note := range t.Notes {
		fmt.Fprintf(&b, "note: %s\n", note)
	}
	if p != nil {
		writePlan(&b, p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeNode(b *strings.Builder, n Node) {
	fmt.Fprintf(b, "node %d: cpus %s, memory %s", n.ID, cpuList(n.CPUs), bytesText(n.Memory))
	if n.Free >= 0 {
		fmt.Fprintf(b, " (%s free)", bytesText(uint64(n.Free)))
	}
	fmt.Fprintf(b, ", distances %s\n", joinInts(n.Distances))
	for _, h := range n.HugePages {
		free := "?"
		if h.Free >= 0 {
			free = strconv.FormatInt(h.Free, 10)
		}
		fmt.Fprintf(b, "  hugepages %dkB: %d total, %s free\n", h.SizeKB, h.Total, free)
	}
}

func writeCGroup(b *strings.Builder, g *CGroup) {
	fmt.Fprintf(b, "cgroup v%d %s:", g.Version, orDash(g.Path))
	if g.CPUs != nil {
		fmt.Fprintf(b, " cpus %s, memory nodes %s,", cpuList(g.CPUs), cpuList(g.Mems))
	}
	quota, mem := "none", "none"
	if g.CPUQuota > 0 {
		quota = strconv.FormatFloat(g.CPUQuota, 'f', 2, 64) + " cpus"
	}
	if g.MemoryMax > 0 {
		mem = bytesText(uint64(g.MemoryMax))
	}
	fmt.Fprintf(b, " cpu quota %s, memory limit %s", quota, mem)
	for _, h := range g.HugeTLB {
		fmt.Fprintf(b, ", hugetlb %dkB limit %s", h.SizeKB, bytesText(uint64(h.Max)))
	}
	b.WriteByte('\n')
}

func writeCaches(b *strings.Builder, cs []CPUCache) {
	type kind struct {
		level int
		typ   string
		size  uint64
	}
	count := map[kind]int{}
	var order []kind
	for _, c := range cs {
		k := kind{c.Level, c.Type, c.Size}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	if len(order) == 0 {
		return
	}
	b.WriteString("caches:")
	for i, k := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, " %d x L%d %s %s", count[k], k.level, strings.ToLower(k.typ), bytesText(k.size))
	}
	b.WriteByte('\n')
}

func writePlan(b *strings.Builder, p *Plan) {
	fmt.Fprintf(b, "plan: -numa %s -workers %d: %d loop(s) on node(s) %s (%s)\n",
		p.NUMA, p.Workers, len(p.Loops), joinInts(p.Nodes), p.Reason)
	for i, l := range p.Loops {
		cpu := "not pinned"
		if l.CPU >= 0 {
			cpu = "cpu " + strconv.Itoa(l.CPU)
		}
		fmt.Fprintf(b, "  loop %d: %s, memory from node %d\n", i, cpu, l.Node)
	}
}

func cpuList(c []int) string {
	if len(c) == 0 {
		return "none"
	}
	return cnuma.FormatCPUList(c)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// jsonDoc is the topo/v1 document: the machine's numa_nodes, packages, cores,
// pus, caches and devices, and this package's additions allowed_cpus, can_pin,
// notes, free_bytes, cgroup, alignment and plan. The struct tags here are the schema: a change to
// a tag's name or meaning is a new version in Schema.
type jsonDoc struct {
	Schema      string        `json:"schema"`
	Source      string        `json:"source"`
	Nodes       []jsonNode    `json:"numa_nodes"`
	Packages    []jsonPackage `json:"packages,omitempty"`
	Cores       []jsonCore    `json:"cores,omitempty"`
	PUs         []int         `json:"pus"`
	Caches      []jsonCache   `json:"caches,omitempty"`
	Devices     []jsonDevice  `json:"devices"`
	AllowedCPUs []int         `json:"allowed_cpus,omitempty"`
	CanPin      bool          `json:"can_pin"`
	Notes       []string      `json:"notes,omitempty"`
	CGroup      *jsonCGroup   `json:"cgroup,omitempty"`
	Alignment   jsonAlignment `json:"alignment"`
	Plan        *jsonPlan     `json:"plan,omitempty"`
}

type jsonCGroup struct {
	Version   int              `json:"version"`
	Path      string           `json:"path"`
	CPUs      []int            `json:"cpus,omitempty"`
	Mems      []int            `json:"mems,omitempty"`
	CPUQuota  float64          `json:"cpu_quota,omitempty"`
	MemoryMax int64            `json:"memory_max_bytes,omitempty"`
	HugeTLB   map[string]int64 `json:"hugetlb_max_bytes,omitempty"`
}

type jsonAlignment struct {
	CPUNodes    []int `json:"cpu_nodes"`
	MemoryNodes []int `json:"memory_nodes"`
	SingleNode  bool  `json:"single_node"`
}

type jsonNode struct {
	ID        int                     `json:"id"`
	CPUs      []int                   `json:"cpus"`
	Memory    uint64                  `json:"memory_bytes"`
	Free      *int64                  `json:"free_bytes,omitempty"`
	Distances []int                   `json:"distances"`
	HugePages map[string]jsonHugePage `json:"hugepages,omitempty"`
}

type jsonHugePage struct {
	Total uint64 `json:"total"`
	Free  *int64 `json:"free,omitempty"`
}

type jsonPackage struct {
	ID   int   `json:"id"`
	CPUs []int `json:"cpus"`
}

type jsonCore struct {
	Package int   `json:"package"`
	ID      int   `json:"id"`
	CPUs    []int `json:"cpus"`
}

type jsonCache struct {
	Level int    `json:"level"`
	Type  string `json:"type"`
	Size  uint64 `json:"size_bytes"`
	CPUs  []int  `json:"cpus"`
}

type jsonDevice struct {
	Name      string `json:"name"`
	Class     string `json:"class"`
	PCI       string `json:"pci,omitempty"`
	Node      int    `json:"numa_node"`
	LocalCPUs []int  `json:"local_cpus,omitempty"`
}

type jsonPlan struct {
	NUMA    string     `json:"numa"`
	Workers int        `json:"workers"`
	Nodes   []int      `json:"nodes"`
	Reason  string     `json:"reason"`
	Loops   []jsonLoop `json:"loops"`
}

type jsonLoop struct {
	ID   int `json:"id"`
	CPU  int `json:"cpu"`
	Node int `json:"node"`
}

// WriteJSON writes the topo/v1 document for t, with a "plan" field when p is
// not nil. Free counts that the source does not know are left out, not zero.
func WriteJSON(w io.Writer, t *Topology, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(toJSON(t, p))
}

func toJSON(t *Topology, p *Plan) jsonDoc {
	d := jsonDoc{Schema: Schema, Source: t.Source, PUs: nonNil(t.PUs), Devices: []jsonDevice{},
		AllowedCPUs: t.Allowed, CanPin: t.CanPin, Notes: t.Notes}
	for _, n := range t.Nodes {
		d.Nodes = append(d.Nodes, nodeJSON(n))
	}
	for _, pk := range t.Packages {
		d.Packages = append(d.Packages, jsonPackage{pk.ID, nonNil(pk.CPUs)})
	}
	for _, c := range t.Cores {
		d.Cores = append(d.Cores, jsonCore{c.Package, c.ID, nonNil(c.CPUs)})
	}
	for _, c := range t.Caches {
		d.Caches = append(d.Caches, jsonCache{c.Level, c.Type, c.Size, nonNil(c.CPUs)})
	}
	for _, n := range t.NICs {
		d.Devices = append(d.Devices, jsonDevice{n.Name, "net", n.PCI, n.Node, n.LocalCPUs})
	}
	if g := t.CGroup; g != nil {
		d.CGroup = &jsonCGroup{Version: g.Version, Path: g.Path, CPUs: g.CPUs, Mems: g.Mems, CPUQuota: g.CPUQuota, MemoryMax: g.MemoryMax}
		for _, h := range g.HugeTLB {
			if d.CGroup.HugeTLB == nil {
				d.CGroup.HugeTLB = map[string]int64{}
			}
			d.CGroup.HugeTLB[strconv.FormatUint(h.SizeKB, 10)+"kB"] = h.Max
		}
	}
	a := t.Alignment()
	d.Alignment = jsonAlignment{nonNil(a.CPUNodes), nonNil(a.MemoryNodes), a.SingleNode}
	if p != nil {
		jp := &jsonPlan{NUMA: p.NUMA.String(), Workers: p.Workers, Nodes: nonNil(p.Nodes), Reason: p.Reason, Loops: []jsonLoop{}}
		for i, l := range p.Loops {
			jp.Loops = append(jp.Loops, jsonLoop{i, l.CPU, l.Node})
		}
		d.Plan = jp
	}
	return d
}

func nodeJSON(n Node) jsonNode {
	j := jsonNode{ID: n.ID, CPUs: nonNil(n.CPUs), Memory: n.Memory, Distances: nonNil(n.Distances)}
	if n.Free >= 0 {
		j.Free = &n.Free
	}
	if len(n.HugePages) > 0 {
		j.HugePages = map[string]jsonHugePage{}
		for _, h := range n.HugePages {
			hp := jsonHugePage{Total: h.Total}
			if h.Free >= 0 {
				free := h.Free
				hp.Free = &free
			}
			j.HugePages[strconv.FormatUint(h.SizeKB, 10)+"kB"] = hp
		}
	}
	return j
}

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
