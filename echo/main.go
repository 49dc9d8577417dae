// Command echo is hioload-ws's WebSocket echo server: every text or binary
// message a client sends comes back to it unchanged, from pinned event loops
// that write the reply from the very bytes they read.
//
//	echo -addr :9001 -batch 32 -ring 1024 -workers 0 -numa auto
//	echo -config echo.json -metrics 127.0.0.1:9090   # kill -HUP reloads echo.json
//	echo -metrics :9090 -drain-delay 10s             # in a pod: probes, drain on SIGTERM
//	echo -check -json                                # the settings it would run with
//
// In a container it plans within its cgroup: loops on the cpuset's CPUs
// (and no more than the CPU quota), the pools and the heap budget within
// the memory limit (memory.go). The admin address serves the probes
// (admin.go); signals.go drains and shuts down; watch.go follows the
// -config file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hioload-ws/hioload-ws/topology"
	"github.com/hioload-ws/hioload-ws/ws"
	"github.com/hioload-ws/hioload-ws/ws/wsmetrics"
)

func init() {
	// Keep the main goroutine on the main thread so no event loop lands on
	// it (a loop there would rename the process and own its CPU mask).
	runtime.LockOSThread()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// options are the command line: the server's Config, whose fields the
// flags set directly (their defaults are ws.DefaultConfig's), and what only
// the command has.
type options struct {
	cfg       ws.Config
	numa      string
	maxMsg    int64
	origins   string
	hugepages bool
	gogc      int
	stats     time.Duration
	logLevel  string
	config    string
	metrics   string
	topology  bool
	json      bool

	check       bool
	drainDelay  time.Duration
	configWatch time.Duration
	memLimit    int64
	maxHeapSet  bool // -max-heap was given: refuse it if it cannot fit, rather than lower it
}

func parseFlags(fs *flag.FlagSet, args []string) (*options, error) {
	o := &options{cfg: ws.DefaultConfig(), numa: "auto", hugepages: true, gogc: 25, stats: 5 * time.Second, logLevel: "info"}
	c := &o.cfg
	fs.StringVar(&c.ListenAddr, "addr", c.ListenAddr, "WebSocket listen address")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "events handled per epoll_wait (per loop)")
	fs.IntVar(&c.ReactorRing, "ring", c.ReactorRing, "capacity of each loop's inbox ring")
	fs.IntVar(&c.Workers, "workers", c.Workers, "event loops (0 = one per CPU of the chosen NUMA node(s))")
	fs.StringVar(&o.numa, "numa", o.numa, `NUMA node for loops and memory: "auto" (or -1) or a node number`)
	fs.Int64Var(&o.maxMsg, "max-message", c.MaxMessageSize, "largest message accepted, in bytes (larger: close 1009)")
	fs.IntVar(&c.MaxWriteQueue, "max-write-queue", c.MaxWriteQueue, "bytes queued for a client that is not reading before it gets close 1008")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "most open connections; past it clients get close 1013 (0 = the open-file limit less 64)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "most connections from one address; past it HTTP 429 (0 = no limit)")
	fs.StringVar(&o.origins, "origins", "", "comma-separated Origin values browsers may connect from; others get HTTP 403 (empty = any)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "time a client has to complete the upgrade")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close (1001) clients silent this long, pinging them at half of it (0 = off)")
	fs.Int64Var(&c.MaxHeapBytes, "max-heap", c.MaxHeapBytes, "Go heap bytes for connection buffers once the pools run out; past it work is refused (1013)")
	fs.BoolVar(&o.hugepages, "hugepages", o.hugepages, "back buffer pools with huge pages (hugetlb if reserved, else THP); false: base pages")
	fs.IntVar(&o.gogc, "gogc", o.gogc, "Go GC target percent, unless GOGC is set (the echo path allocates nothing per message, so a low value costs nothing under load and keeps memory per connection low)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for clients to answer close 1001")
	fs.DurationVar(&o.stats, "stats", o.stats, "interval of the stats line (0 = off)")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")
	fs.StringVar(&o.config, "config", "", "JSON file of reloadable settings, applied at start and on SIGHUP (see docs/OBSERVABILITY.md)")
	fs.StringVar(&o.metrics, "metrics", "", "address for /metrics, /debug/probes and /debug/pprof/, e.g. :9090 (empty = off)")
	fs.BoolVar(&o.topology, "topology", false, "print the machine's topology and the loop plan for these flags, then exit")
	fs.BoolVar(&o.json, "json", false, "with -topology: print the topo/v1 JSON report; with -check: print the settings as JSON")
	fs.BoolVar(&o.check, "check", false, "check the flags, the -config file, the loop plan and the memory budget, print the settings, then exit (1 on an error)")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGTERM or SIGINT, keep serving and accepting this long with /readyz failing before shutting down (a second signal ends it early)")
	fs.DurationVar(&o.configWatch, "config-watch", 10*time.Second, "how often to check the -config file for changes and reload it (0 = on SIGHUP only)")
	fs.Int64Var(&o.memLimit, "memory-limit", 0, "bytes to fit the buffer pools and -max-heap into (0 = the cgroup's memory limit, if any)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.maxHeapSet = o.maxHeapSet || f.Name == "max-heap" })
	if o.drainDelay < 0 || o.configWatch < 0 || o.memLimit < 0 {
		return nil, errors.New("-drain-delay, -config-watch and -memory-limit must not be negative")
	}
	sel, err := topology.ParseNUMA(o.numa)
	if err != nil {
		return nil, err
	}
	if !sel.Auto {
		c.NUMANode = sel.Node
	}
	c.MaxFrameSize, c.MaxMessageSize = o.maxMsg, o.maxMsg
	if o.origins != "" {
		c.AllowedOrigins = strings.Split(o.origins, ",")
	}
	c.NoHugepages = !o.hugepages
	return o, nil
}

func run() error {
	o, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(o.gogc)
	}
	var level slog.LevelVar // the control plane may change it at run time
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	topo, plan, err := planLoops(o)
	if err != nil {
		return err
	}
	if o.topology {
		if o.json {
			return topology.WriteJSON(os.Stdout, topo, plan)
		}
		return topology.WriteText(os.Stdout, topo, plan)
	}
	mem, err := planMemory(o, topo, plan)
	if err != nil {
		return err
	}
	if o.check {
		mem.apply(o, slog.New(slog.DiscardHandler))
		return check(o, plan, mem)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	o.cfg.Logger = log
	o.cfg.Topology = topo // discovered once: NewServer makes the same plan from it
	mem.apply(o, log)
	srv, err := newServer(o, &level)
	if err != nil {
		return err
	}
	cfgFile, err := newConfigFile(o.config, srv.GetControl(), log)
	if err != nil {
		return err
	}
	h := &health{}
	debugSrv, debugLn, err := serveMetrics(o.metrics, srv, h)
	if err != nil {
		return err
	}
	printStats(srv, o.stats)
	cfgFile.watch(o.configWatch)
	lc := &lifecycle{srv: srv, admin: debugSrv, health: h, config: cfgFile, drain: o.drainDelay, log: log}
	lc.handleSignals()
	// Ready before the address lines, which tests and scripts wait for: the
	// sockets are bound (connections wait in their backlogs) and Run starts
	// the loops next.
	h.ready.Store(true)
	fmt.Printf("echo: listening on %s\n", srv.Addr())
	if debugLn != nil {
		fmt.Printf("echo: metrics on http://%s/metrics\n", debugLn.Addr())
	}
	if err := srv.Run(ws.HandlerFunc(echo)); err != nil {
		return err
	}
	fmt.Println("Server stopped.")
	return nil
}

// echo replies with the same bytes, as text or binary like the message
// came. WriteMessage does not copy: the reply leaves from the buffer the
// message was read into.
func echo(e *ws.Event) error {
	if e.Kind != ws.MessageEvent {
		return nil
	}
	return e.Conn.WriteMessage(e.Op, e.Data)
}

// newServer makes the server with logging and panic recovery around the
// handler and the handler metrics innermost (so that they time the handler
// alone), applies the config file, and registers the probes.
func newServer(o *options, level *slog.LevelVar) (*ws.Server, error) {
	log := o.cfg.Logger
	srv, err := ws.NewServer(o.cfg, ws.WithLogLevel(level), ws.WithMiddleware(ws.Logging(log), ws.Recovery(log)))
	if err != nil {
		return nil, err
	}
	ctrl := srv.GetControl()
	srv.UseMiddleware(ws.HandlerMetrics(ctrl))
	if o.config != "" { // reloadable settings from the file override the flags
		if err := ctrl.ReloadFile(o.config); err != nil {
			return nil, err
		}
	}
	ctrl.RegisterDebugProbe("active_connections", func() any { return srv.Stats().Connections })
	ctrl.RegisterDebugProbe("messages_processed", func() any { return ctrl.HandlerStats().Processed })
	return srv, nil
}

// printStats prints the stats line every interval (0: never).
func printStats(srv *ws.Server, every time.Duration) {
	if every <= 0 {
		return
	}
	ctrl := srv.GetControl()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for range t.C {
			st := ctrl.Stats()
			fmt.Printf("[%s] Active: %v, Msgs: %v\n", time.Now().Format(time.Stamp), st["active_connections"], st["messages_processed"])
		}
	}()
}

// serveMetrics serves Prometheus metrics, probes, pprof and the health
// endpoints (health.wrap) on addr, only if asked for.
func serveMetrics(addr string, srv *ws.Server, h *health) (*http.Server, net.Listener, error) {
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics: %w", err)
	}
	hs := &http.Server{Handler: h.wrap(wsmetrics.NewDebugMux(srv, nil)), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	return hs, ln, nil
}

// planLoops discovers the machine once and makes the loop plan the flags
// ask for: -topology prints it, -check and the memory budget count its
// nodes, and NewServer places the loops from the same topology.
func planLoops(o *options) (*topology.Topology, *topology.Plan, error) {
	topo, err := topology.Discover()
	if err != nil {
		return nil, nil, err
	}
	sel := topology.Auto
	if o.cfg.NUMANode >= 0 {
		sel = topology.Selector{Node: o.cfg.NUMANode}
	}
	plan, err := topo.PlanFor(sel, o.cfg.Workers, o.cfg.ListenAddr)
	if err != nil {
		return nil, nil, err
	}
	return topo, plan, nil
}
