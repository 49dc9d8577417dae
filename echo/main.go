// Command echo is hioload-ws's WebSocket echo server: every text or binary
// message a client sends comes back to it unchanged, from pinned event loops
// that write the reply from the very bytes they read.
//
//	echo -addr :9001 -batch 32 -ring 1024 -workers 0 -numa auto
//	echo -config echo.json -metrics 127.0.0.1:9090   # kill -HUP reloads echo.json
//	echo -metrics 127.0.0.1:9090 -pprof              # and the profiles, on loopback
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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
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
	// A vanished reader of stdout or stderr must not kill the server: with
	// SIGPIPE ignored, writes there fail with EPIPE (and the sinks count
	// the lost lines) instead of ending the process.
	signal.Ignore(syscall.SIGPIPE)
	// Every line goes through a bounded, non-blocking sink: a stdout or
	// stderr nobody reads never stalls a loop, the stats ticker or the
	// shutdown.
	stdout, stderr := ws.NewLogSink(os.Stdout, 64<<10), ws.NewLogSink(os.Stderr, 0)
	err := run(stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "echo:", err)
	}
	// Give the lines a bounded time to get out: a stalled reader must not
	// keep the process from exiting.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	stdout.Close(ctx)
	stderr.Close(ctx)
	cancel()
	os.Exit(exitCode(err))
}

// Exit statuses, so that a supervisor or script can tell a graceful stop
// from a forced one (the README lists them). The flag package exits 2 for a
// command line it cannot parse.
const (
	exitOK        = 0 // stopped gracefully: every client answered its close 1001
	exitFailed    = 1 // did not start (bad flag value, address in use, ...) or failed
	exitForced    = 3 // -shutdown-timeout passed: clients were closed without the close handshake
	exitPoolsKept = 4 // the buffer pools could not be unmapped at the end
	exitBoth      = 5 // forced, and the pools kept
)

// exitCode maps run's error to the exit status.
func exitCode(err error) int {
	var se *ws.ShutdownError
	forced, kept := errors.As(err, &se), errors.Is(err, ws.ErrPoolsKept)
	switch {
	case err == nil:
		return exitOK
	case forced && kept:
		return exitBoth
	case forced:
		return exitForced
	case kept:
		return exitPoolsKept
	}
	return exitFailed
}

// options are the command line: the server's Config, whose fields the
// flags set directly (their defaults are ws.DefaultConfig's), and what only
// the command has.
type options struct {
	cfg       ws.Config
	numa      string
	engine    string
	maxMsg    int64
	origins   string
	hugepages bool
	gogc      int
	stats     time.Duration
	logLevel  string
	config    string
	metrics   string
	pprof     bool
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
	fs.BoolVar(&c.ReusePort, "reuse-port", c.ReusePort, "share -addr with other processes that listen on it (SO_REUSEPORT, Linux; off: refuse an address in use)")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "events handled per epoll_wait, per loop (io_uring: the completions -batch-wait waits for)")
	fs.DurationVar(&c.BatchWait, "batch-wait", c.BatchWait, "io_uring: how long an idle loop may wait for -batch events before it handles fewer (0 = wake for each event)")
	fs.IntVar(&c.ReactorRing, "ring", c.ReactorRing, "capacity of each loop's inbox ring")
	fs.IntVar(&c.Workers, "workers", c.Workers, "event loops (0 = one per CPU of the chosen NUMA node(s))")
	fs.StringVar(&o.numa, "numa", o.numa, `NUMA node for loops and memory: "auto" (or -1) or a node number`)
	fs.StringVar(&o.engine, "engine", "auto", "I/O engine of the loops: auto (io_uring where the kernel has it, else epoll, saying why; HIOLOAD_ENGINE overrides it), epoll or uring")
	fs.Int64Var(&o.maxMsg, "max-message", c.MaxMessageSize, "largest message accepted, in bytes (larger: close 1009)")
	fs.IntVar(&c.MaxWriteQueue, "max-write-queue", c.MaxWriteQueue, "bytes queued for a client that is not reading before it gets close 1008")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "most open TCP connections; past it new ones are reset at accept (0 = the open-file limit less 64)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "most TCP connections from one address (IPv6: one /64); past it new ones are reset at accept (0 = no limit)")
	fs.IntVar(&c.MaxHandshakes, "max-handshakes", c.MaxHandshakes, "most connections still handshaking; past it new ones are reset at accept (0 = no limit)")
	fs.IntVar(&c.MaxHandshakesPerIP, "max-handshakes-per-ip", c.MaxHandshakesPerIP, "most connections still handshaking from one address (0 = no limit; set 0 behind a load balancer)")
	fs.StringVar(&o.origins, "origins", "", "comma-separated Origin values browsers may connect from; others get HTTP 403 (empty = any)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "time a client has to complete the upgrade")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close (1001) clients silent this long, pinging them at half of it (0 = off)")
	fs.DurationVar(&c.WriteStallTimeout, "write-stall-timeout", c.WriteStallTimeout, "drop (1008) clients that take none of their queued replies this long (0 = off)")
	fs.DurationVar(&c.TCPKeepAlive, "tcp-keepalive", c.TCPKeepAlive, "TCP keepalive probes after this much silence, then every this much, to drop vanished clients (0 = off)")
	fs.Int64Var(&c.MaxHeapBytes, "max-heap", c.MaxHeapBytes, "buffer bytes held beyond the pools (heap and large-message regions, paid as bytes arrive); when short, the connections holding the most get 1013")
	fs.DurationVar(&c.ReleaseMemoryEvery, "release-memory-every", c.ReleaseMemoryEvery, "at most this often, hand free Go heap memory (64 MiB or more) back to the system after a burst (0 = leave it to the runtime)")
	fs.BoolVar(&o.hugepages, "hugepages", o.hugepages, "back buffer pools with huge pages (hugetlb if reserved, else THP); false: base pages")
	fs.IntVar(&o.gogc, "gogc", o.gogc, "Go GC target percent, unless GOGC is set (the echo path allocates nothing per message, so a low value costs nothing under load and keeps memory per connection low)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for clients to answer close 1001")
	z := &c.Compression
	fs.BoolVar(&z.Enabled, "compression", z.Enabled, "accept permessage-deflate (RFC 7692) when a client offers it")
	fs.IntVar(&z.Level, "compression-level", z.Level, "deflate level of replies: 1 (fastest) to 9 (smallest)")
	fs.BoolVar(&z.ServerContextTakeover, "compression-context-takeover", z.ServerContextTakeover, "let replies refer to the connection's earlier replies (history kept in the loop's slots, not per connection)")
	fs.IntVar(&z.ServerWindowBits, "compression-window-bits", z.ServerWindowBits, "largest window of replies, 8 (256 B) to 15 (32 KiB)")
	fs.BoolVar(&z.ClientContextTakeover, "compression-client-context-takeover", z.ClientContextTakeover, "let clients' messages refer to their earlier ones (costs a window of 2^client-window-bits bytes per connection)")
	fs.IntVar(&z.ClientWindowBits, "compression-client-window-bits", z.ClientWindowBits, "largest client window accepted under client context takeover, 8 to 15")
	fs.IntVar(&z.MinSize, "compression-min-size", z.MinSize, "replies shorter than this go uncompressed (an echo of a compressed message is always compressed)")
	fs.IntVar(&z.HistorySlots, "compression-slots", z.HistorySlots, "compressors per loop keeping a connection's history under context takeover (about 1 MiB each)")
	fs.DurationVar(&o.stats, "stats", o.stats, "interval of the stats line (0 = off)")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")
	fs.StringVar(&o.config, "config", "", "JSON file of reloadable settings, applied at start and on SIGHUP (see docs/OBSERVABILITY.md)")
	fs.StringVar(&o.metrics, "metrics", "", "address for /metrics and /debug/probes, e.g. 127.0.0.1:9090 (empty = off; keep it on loopback or a private network)")
	fs.BoolVar(&o.pprof, "pprof", false, "also serve /debug/pprof/ (profiles, goroutine stacks, trace, command line) on the -metrics address")
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
	switch c.IOEngine = ws.IOEngine(o.engine); c.IOEngine {
	case ws.IOAuto, ws.IOEpoll, ws.IOURing:
	default:
		return nil, fmt.Errorf("-engine %q: want auto, epoll or uring", o.engine)
	}
	c.MaxFrameSize, c.MaxMessageSize = o.maxMsg, o.maxMsg
	if o.origins != "" {
		c.AllowedOrigins = strings.Split(o.origins, ",")
	}
	c.NoHugepages = !o.hugepages
	if o.pprof && o.metrics == "" {
		return nil, errors.New("-pprof needs -metrics (the address to serve the profiles on)")
	}
	return o, nil
}

func run(stdout, stderr *ws.LogSink) error {
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
		io, why, err := ws.ChooseIOEngine(o.cfg.IOEngine)
		if err != nil {
			return err
		}
		note := "io engine: " + string(io)
		if why != "" {
			note += " (io_uring not used: " + why + ")"
		}
		topo.Notes = append(topo.Notes, note)
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &level}))
	o.cfg.Logger = log
	o.cfg.Topology = topo // discovered once: NewServer makes the same plan from it
	mem.apply(o, log)
	srv, err := newServer(o, &level, stderr)
	if errors.Is(err, ws.ErrAddrInUse) {
		return fmt.Errorf("%w; is another server running? (-reuse-port shares the address on purpose)", err)
	}
	if err != nil {
		return err
	}
	cfgFile, err := newConfigFile(o.config, srv.GetControl(), log)
	if err != nil {
		return err
	}
	h := &health{}
	debugSrv, debugLn, err := serveMetrics(o, srv, h, log)
	if err != nil {
		return err
	}
	cfgFile.watch(o.configWatch)
	lc := &lifecycle{out: stdout, srv: srv, admin: debugSrv, health: h, config: cfgFile, drain: o.drainDelay, log: log}
	lc.handleSignals()
	// Ready before the address lines, which tests and scripts wait for: the
	// sockets are bound (connections wait in their backlogs) and Run starts
	// the loops next.
	h.ready.Store(true)
	fmt.Fprintf(stdout, "echo: listening on %s\n", srv.Addr())
	if debugLn != nil {
		fmt.Fprintf(stdout, "echo: metrics on http://%s/metrics\n", debugLn.Addr())
	}
	fmt.Fprintf(stdout, "echo: io engine %s\n", srv.IOEngine())
	printStats(srv, o.stats, stdout) // after the address lines, which scripts wait for
	if err := srv.Run(ws.HandlerFunc(echo)); err != nil {
		fmt.Fprintln(stdout, "Server stopped, not gracefully.")
		return err
	}
	fmt.Fprintln(stdout, "Server stopped.")
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
func newServer(o *options, level *slog.LevelVar, sink *ws.LogSink) (*ws.Server, error) {
	log := o.cfg.Logger
	srv, err := ws.NewServer(o.cfg, ws.WithLogLevel(level), ws.WithLogSink(sink),
		ws.WithMiddleware(ws.Logging(log), ws.Recovery(log)))
	if err != nil {
		return nil, err
	}
	sizeProcs(len(srv.Stats().Loops), log)
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

// sizeProcs gives the Go runtime one P more than there are loops, unless
// GOMAXPROCS is set: each loop then keeps its P while it waits in the
// kernel (reactor.WaitRaw, which a loop uses when a P is left over), so a
// wakeup costs no scheduler hand-off, and the spare P runs everything
// else (signals, the stats ticker, metrics, the garbage collector's
// background work).
func sizeProcs(loops int, log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if n := runtime.GOMAXPROCS(0); n <= loops {
		runtime.GOMAXPROCS(loops + 1)
		log.Debug("GOMAXPROCS raised so that each loop keeps its P while it waits", "from", n, "to", loops+1)
	}
}

// printStats prints the stats line to out every interval (0: never).
func printStats(srv *ws.Server, every time.Duration, out io.Writer) {
	if every <= 0 {
		return
	}
	ctrl := srv.GetControl()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for range t.C {
			st := ctrl.Stats()
			fmt.Fprintf(out, "[%s] Active: %v, Msgs: %v\n", time.Now().Format(time.Stamp), st["active_connections"], st["messages_processed"])
		}
	}()
}

// serveMetrics serves Prometheus metrics, probes and the health endpoints
// (health.wrap) on addr, and the profiles with -pprof, only if asked for; the listener has timeouts on
// every phase of a request (wsmetrics.NewHTTPServer).
func serveMetrics(o *options, srv *ws.Server, h *health, log *slog.Logger) (*http.Server, net.Listener, error) {
	if o.metrics == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", o.metrics)
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics: %w", err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		log.Warn("metrics listener reachable beyond this host: bind it to loopback or a private network", "addr", ln.Addr().String(), "pprof", o.pprof)
	}
	mux := wsmetrics.NewDebugMux(srv, nil)
	if o.pprof {
		wsmetrics.HandlePprof(mux)
	}
	hs := wsmetrics.NewHTTPServer(h.wrap(mux))
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
