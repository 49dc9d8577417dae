package topology

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// Plan is where the event loops run: one Seat per loop, grouped by node in
// ascending node order. Memory for a loop comes from its Seat's Node.
type Plan struct {
	NUMA    Selector
	Workers int    // as asked; 0 = one loop per usable CPU
	Nodes   []int  // the nodes chosen, ascending
	Reason  string // why these nodes, for logs and reports
	Loops   []Seat
}

// Seat is the planned place of one event loop: the CPU its thread is pinned
// to (-1 = not pinned, where the platform cannot pin) and the node its memory
// comes from. The running loop is a reactor.Loop; a Seat only says where it
// goes.
type Seat struct {
	CPU  int
	Node int
}

// Plan places workers loops for sel without knowing the listen address: for
// Auto that means every node with a usable CPU. See PlanNIC.
func (t *Topology) Plan(sel Selector, workers int) (*Plan, error) {
	return t.PlanNIC(sel, workers, "")
}

// PlanFor is Plan for a server listening on listenAddr ("host:port"): with Auto,
// if the address belongs to a NIC that sits on a node, the loops go on that node.
// An unspecified host (":8080", "0.0.0.0:8080"), a loopback address, a host name
// or an address no interface holds leaves Auto at every node.
func (t *Topology) PlanFor(sel Selector, workers int, listenAddr string) (*Plan, error) {
	return t.PlanNIC(sel, workers, InterfaceOf(listenAddr))
}

// InterfaceOf returns the name of the network interface that holds the IP of
// listenAddr, or "" when there is none or the host is unspecified. It does no
// DNS lookups.
func InterfaceOf(listenAddr string) string {
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		host = listenAddr
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || ip.IsUnspecified() {
		return ""
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return ifc.Name
			}
		}
	}
	return ""
}

// PlanNIC is the planner behind Plan and PlanFor: nic is the interface serving
// the listen address, "" when unknown.
//
// Auto picks nic's node when the NIC has one and that node has a usable CPU,
// else every node with a usable CPU. Selector{Node: n} picks n; a node the
// machine lacks is an error wrapping cnuma.ErrNoNode that lists the nodes,
// and a node without a usable CPU is an error wrapping ErrNoCPU. Usable CPUs
// are online, on the node, and in t.Allowed (when known).
//
// Auto also leaves out nodes that the process's cgroup takes no memory from
// (cpuset.mems), as long as one node remains.
//
// workers 0 places one loop per usable CPU, or, under a cgroup CPU quota
// (cpu.max) smaller than that, one per whole CPU of the quota rounded up,
// as the Go runtime sizes GOMAXPROCS: pinned loops beyond the quota would
// only be throttled. Otherwise loops take the usable
// CPUs node by node in turn (node 0's first, node 1's first, node 0's second,
// ...), so a few loops spread over the nodes; more loops than CPUs wrap round
// and share CPUs. A negative workers is an error wrapping ErrBadWorkers.
func (t *Topology) PlanNIC(sel Selector, workers int, nic string) (*Plan, error) {
	if workers < 0 {
		return nil, fmt.Errorf("%w: %d (want 0 for one loop per cpu, or more)", ErrBadWorkers, workers)
	}
	p := &Plan{NUMA: sel, Workers: workers}
	nodes, err := t.chooseNodes(p, nic)
	if err != nil {
		return nil, err
	}
	p.Nodes = nodes
	if workers == 0 {
		seats := 0
		for _, id := range nodes {
			seats += len(t.cpusFor(id))
		}
		if q := t.CGroup.QuotaCPUs(); q > 0 && q < seats {
			workers = q
			p.Reason += fmt.Sprintf("; cgroup cpu quota %.2f cpus: %d loop(s)", t.CGroup.CPUQuota, q)
		}
	}
	p.Loops = t.place(nodes, workers)
	return p, nil
}

func (t *Topology) chooseNodes(p *Plan, nic string) ([]int, error) {
	if !p.NUMA.Auto {
		id := p.NUMA.Node
		if _, ok := t.Node(id); !ok {
			return nil, fmt.Errorf("topology: -numa %d: %w (this machine has nodes %s)", id, cnuma.ErrNoNode, joinInts(t.NodeIDs()))
		}
		if len(t.cpusFor(id)) == 0 {
			return nil, t.noCPUError([]int{id})
		}
		p.Reason = "numa " + strconv.Itoa(id)
		return []int{id}, nil
	}
	var usable []int
	for _, id := range t.NodeIDs() {
		if len(t.cpusFor(id)) > 0 {
			usable = append(usable, id)
		}
	}
	if len(usable) == 0 {
		return nil, t.noCPUError(t.NodeIDs())
	}
	if mems := t.memoryNodes(); len(mems) > 0 {
		// The cgroup takes memory from these nodes only (cpuset.mems):
		// loops elsewhere would get remote memory.
		if in := intersect(usable, mems); len(in) > 0 && len(in) < len(usable) {
			usable = in
			defer func() { p.Reason += "; the cgroup takes memory from node(s) " + joinInts(in) + " only" }()
		}
	}
	if nic == "" {
		p.Reason = "auto: listen NIC unknown, every node"
		return usable, nil
	}
	d, ok := t.NIC(nic)
	switch {
	case !ok:
		p.Reason = "auto: " + nic + " is not a device NIC, every node"
	case d.Node < 0:
		p.Reason = "auto: " + nic + " has no NUMA affinity, every node"
	case !slices.Contains(usable, d.Node):
		p.Reason = fmt.Sprintf("auto: %s is on node %d, which has no usable cpu; every node", nic, d.Node)
	default:
		p.Reason = fmt.Sprintf("auto: %s is on node %d", nic, d.Node)
		return []int{d.Node}, nil
	}
	return usable, nil
}

// memoryNodes returns the nodes the cgroup's cpuset lets memory come from,
// or nil when that is not known.
func (t *Topology) memoryNodes() []int {
	if t.CGroup == nil {
		return nil
	}
	return t.CGroup.Mems
}

func intersect(a, b []int) []int {
	var out []int
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// cpusFor returns the CPUs a loop on node may use; where threads cannot be
// pinned, the node's CPUs only count how many loops it gets.
func (t *Topology) cpusFor(node int) []int {
	if !t.CanPin {
		n, _ := t.Node(node)
		return n.CPUs
	}
	return t.UsableCPUs(node)
}

func (t *Topology) noCPUError(nodes []int) error {
	var b strings.Builder
	for _, id := range nodes {
		n, _ := t.Node(id)
		fmt.Fprintf(&b, "; node %d cpus %q", id, cnuma.FormatCPUList(n.CPUs))
	}
	allowed := "all"
	if t.Allowed != nil {
		allowed = strconv.Quote(cnuma.FormatCPUList(t.Allowed))
	}
	return fmt.Errorf("%w on nodes %s%s, online %q, allowed %s", ErrNoCPU, joinInts(nodes),
		b.String(), cnuma.FormatCPUList(t.PUs), allowed)
}

// place assigns loops to CPUs: all usable CPUs for workers 0, else the CPUs
// interleaved across nodes and wrapped round; then loops are grouped by node.
func (t *Topology) place(nodes []int, workers int) []Seat {
	per := make([][]int, len(nodes))
	for i, id := range nodes {
		per[i] = t.cpusFor(id)
	}
	var seats []Seat
	for k := 0; ; k++ {
		added := false
		for i, cpus := range per {
			if k < len(cpus) {
				seats = append(seats, Seat{CPU: cpus[k], Node: nodes[i]})
				added = true
			}
		}
		if !added {
			break
		}
	}
	if workers == 0 {
		workers = len(seats)
	}
	loops := make([]Seat, workers)
	for i := range loops {
		loops[i] = seats[i%len(seats)]
		if !t.CanPin {
			loops[i].CPU = -1
		}
	}
	slices.SortStableFunc(loops, func(a, b Seat) int { return a.Node - b.Node })
	return loops
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
