package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/hioload-ws/hioload-ws/topology"
)

// Fitting into a memory limit: a container's (cgroup memory.max) or
// -memory-limit. The buffer pools are mapped whole at start, one per NUMA
// node the loops use; the Go heap grows with connections and with messages
// the pools cannot hold, up to -max-heap for buffers. Both must fit, with
// room left for what neither counts: the kernel's socket buffers (charged
// to the cgroup), thread stacks, the binary and the C libraries.
//
// The pools are counted as if their memory were charged to the limit. It is
// not when they get hugetlb pages (those count against the hugetlb limit,
// the pod's hugepages-2Mi), which only leaves more room.

const (
	// minReserve is the least kept for memory that neither the pools nor
	// the Go runtime account for; an eighth of the limit when that is more.
	minReserve = 64 << 20
	// minGoRoom is the least Go memory echo starts with.
	minGoRoom = 32 << 20
	// defaultMaxHeap is -max-heap's default (ws.DefaultConfig).
	defaultMaxHeap = 1 << 30
)

// memoryBudget is how echo fits its memory limit.
type memoryBudget struct {
	Limit     int64  // bytes to stay within; 0 when none is known
	Source    string // "-memory-limit" or "cgroup memory.max"
	Pools     int    // buffer pools: one per NUMA node with a loop
	PoolBytes int64  // what each pool maps
	Reserve   int64  // kept for memory no one else counts
	MaxHeap   int64  // ws.Config.MaxHeapBytes: Go heap for buffers past the pools
	GoLimit   int64  // the Go runtime's soft memory limit; 0 = left alone
	Sized     bool   // MaxHeap was lowered from the default to fit
}

// fitMemory sizes the heap budget within limit for pools pools of
// poolBytes each. maxHeap is -max-heap and set says whether it was given:
// a default is lowered to fit, a value given that cannot fit is refused.
func fitMemory(limit int64, source string, pools int, poolBytes, maxHeap int64, set bool) (memoryBudget, error) {
	b := memoryBudget{Limit: limit, Source: source, Pools: pools, PoolBytes: poolBytes, MaxHeap: maxHeap}
	if limit <= 0 {
		return b, nil
	}
	poolTotal := int64(pools) * poolBytes
	b.Reserve = max(minReserve, limit/8)
	room := limit - poolTotal - b.Reserve
	if room < minGoRoom {
		// The least limit L with L - pools - max(64 MiB, L/8) >= 32 MiB.
		need := max(poolTotal+minReserve+minGoRoom, (poolTotal+minGoRoom)*8/7+1)
		return b, fmt.Errorf("memory limit %s (%s) is too small: %d buffer pool(s) of %s and %s kept for socket buffers and stacks leave %s for the Go runtime; give at least %s",
			mib(limit), source, pools, mib(poolBytes), mib(b.Reserve), mib(max(room, 0)), mib(need))
	}
	b.GoLimit = room
	switch {
	case set && (maxHeap == 0 || maxHeap > room):
		what := mib(maxHeap)
		if maxHeap == 0 {
			what = "0 (no bound)"
		}
		return b, fmt.Errorf("-max-heap %s does not fit the memory limit %s (%s): after %d buffer pool(s) of %s and %s kept for socket buffers and stacks, the Go runtime has %s; lower -max-heap to at most %d or raise the limit",
			what, mib(limit), source, pools, mib(poolBytes), mib(b.Reserve), mib(room), room)
	case !set && maxHeap > room/2:
		// Half of the Go memory for buffers, half for connection state,
		// goroutines and the collector's headroom.
		b.MaxHeap, b.Sized = room/2, true
	}
	return b, nil
}

// planMemory finds the limit (-memory-limit, else the cgroup's) and fits
// the plan's pools and the heap budget into it.
func planMemory(o *options, topo *topology.Topology, plan *topology.Plan) (memoryBudget, error) {
	limit, source := o.memLimit, "-memory-limit"
	if limit == 0 && topo.CGroup != nil && topo.CGroup.MemoryMax > 0 {
		limit, source = topo.CGroup.MemoryMax, "cgroup memory.max"
	}
	poolBytes, err := o.cfg.PoolBytes()
	if err != nil {
		return memoryBudget{}, err
	}
	nodes := map[int]bool{}
	for _, l := range plan.Loops {
		nodes[l.Node] = true
	}
	return fitMemory(limit, source, len(nodes), poolBytes, o.cfg.MaxHeapBytes, o.maxHeapSet)
}

// apply sets the heap budget and, unless GOMEMLIMIT is set, the Go
// runtime's soft memory limit, and says so.
func (b memoryBudget) apply(o *options, log *slog.Logger) {
	o.cfg.MaxHeapBytes = b.MaxHeap
	if b.Limit <= 0 {
		return
	}
	goLimit := "GOMEMLIMIT"
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(b.GoLimit)
		goLimit = mib(b.GoLimit)
	}
	log.Info("memory: fitted to the limit", "limit", mib(b.Limit), "source", b.Source,
		"pools", b.Pools, "pool_bytes", mib(b.PoolBytes), "reserve", mib(b.Reserve),
		"max_heap", mib(b.MaxHeap), "max_heap_lowered", b.Sized, "go_memory_limit", goLimit)
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
