package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hioload-ws/hioload-ws/topology"
	"github.com/hioload-ws/hioload-ws/ws"
)

// checkReport is what -check prints: the settings echo would run with once
// every default and limit is resolved. Deployment tests read it (-check
// -json) to compare manifests with what echo will do: the huge pages its
// pools need, the time its drain and shutdown take.
type checkReport struct {
	Addr                   string  `json:"addr"`
	Admin                  string  `json:"admin,omitempty"`
	Loops                  int     `json:"loops"`
	Nodes                  []int   `json:"nodes"`
	Hugepages              bool    `json:"hugepages"`
	Pools                  int     `json:"pools"`
	PoolBytes              int64   `json:"pool_bytes_per_node"`
	MemoryLimit            int64   `json:"memory_limit_bytes,omitempty"`
	MemorySource           string  `json:"memory_limit_source,omitempty"`
	MaxHeap                int64   `json:"max_heap_bytes"`
	GoMemoryLimit          int64   `json:"go_memory_limit_bytes,omitempty"`
	DrainDelaySeconds      float64 `json:"drain_delay_seconds"`
	ShutdownTimeoutSeconds float64 `json:"shutdown_timeout_seconds"`
	Config                 string  `json:"config,omitempty"`
	ConfigWatchSeconds     float64 `json:"config_watch_seconds"`
}

// check validates what run would start with — the flags, the config file,
// the loop plan and the memory budget — prints it and returns, listening on
// nothing and mapping nothing.
func check(o *options, plan *topology.Plan, mem memoryBudget) error {
	if err := o.cfg.Validate(); err != nil {
		return err
	}
	if o.config != "" {
		if err := ws.CheckReloadFile(o.config, o.cfg); err != nil {
			return err
		}
	}
	r := checkReport{
		Addr: o.cfg.ListenAddr, Admin: o.metrics, Loops: len(plan.Loops), Nodes: plan.Nodes,
		Hugepages: o.hugepages, Pools: mem.Pools, PoolBytes: mem.PoolBytes,
		MemoryLimit: mem.Limit, MemorySource: mem.Source, MaxHeap: mem.MaxHeap, GoMemoryLimit: mem.GoLimit,
		DrainDelaySeconds: o.drainDelay.Seconds(), ShutdownTimeoutSeconds: o.cfg.ShutdownTimeout.Seconds(),
		Config: o.config, ConfigWatchSeconds: o.configWatch.Seconds(),
	}
	if r.MemoryLimit == 0 {
		r.MemorySource = ""
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Printf("echo: configuration ok\n")
	fmt.Printf("listen %s, admin %q; %d loop(s) on node(s) %v (%s)\n", r.Addr, r.Admin, r.Loops, r.Nodes, plan.Reason)
	fmt.Printf("pools: %d of %s (huge pages %v); max heap for buffers %s\n", r.Pools, mib(r.PoolBytes), r.Hugepages, mib(r.MaxHeap))
	if r.MemoryLimit > 0 {
		fmt.Printf("memory limit %s (%s); Go memory limit %s\n", mib(r.MemoryLimit), r.MemorySource, mib(r.GoMemoryLimit))
	}
	fmt.Printf("drain %s, then shutdown within %s\n", o.drainDelay, o.cfg.ShutdownTimeout)
	return nil
}
