// Command echo is hioload-ws's WebSocket echo server: every text or binary
// message a client sends comes back to it unchanged, from pinned event loops
// that write the reply from the very bytes they read.
//
//	echo -addr :9001 -batch 32 -ring 1024 -workers 0 -numa auto
//	echo -config echo.json -metrics 127.0.0.1:9090   # kill -HUP reloads echo.json
package main

import (
	"flag"
	"fmt"
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

func run() error {
	addr := flag.String("addr", ":9001", "WebSocket listen address")
	batch := flag.Int("batch", 32, "events handled per epoll_wait (per loop)")
	ring := flag.Int("ring", 1024, "capacity of each loop's inbox ring")
	workers := flag.Int("workers", 0, "event loops (0 = one per CPU of the chosen NUMA node(s))")
	numa := flag.String("numa", "auto", `NUMA node for loops and memory: "auto" (or -1) or a node number`)
	maxMsg := flag.Int64("max-message", 16<<20, "largest message accepted, in bytes (larger: close 1009)")
	maxQueue := flag.Int("max-write-queue", 32<<20, "bytes queued for a client that is not reading before it gets close 1008")
	maxConns := flag.Int("max-conns", 0, "most open connections; past it clients get close 1013 (0 = the open-file limit less 64)")
	maxPerIP := flag.Int("max-conns-per-ip", 0, "most connections from one address; past it HTTP 429 (0 = no limit)")
	origins := flag.String("origins", "", "comma-separated Origin values browsers may connect from; others get HTTP 403 (empty = any)")
	handshake := flag.Duration("handshake-timeout", 10*time.Second, "time a client has to complete the upgrade")
	idle := flag.Duration("idle-timeout", 0, "close (1001) clients silent this long, pinging them at half of it (0 = off)")
	maxHeap := flag.Int64("max-heap", 1<<30, "Go heap bytes for connection buffers once the pools run out; past it work is refused (1013)")
	hugepages := flag.Bool("hugepages", true, "back buffer pools with huge pages (hugetlb if reserved, else THP); false: base pages")
	gogc := flag.Int("gogc", 25, "Go GC target percent, unless GOGC is set (the echo path allocates nothing per message, so a low value costs nothing under load and keeps memory per connection low)")
	shutdown := flag.Duration("shutdown-timeout", 5*time.Second, "how long shutdown waits for clients to answer close 1001")
	statsEvery := flag.Duration("stats", 5*time.Second, "interval of the stats line (0 = off)")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	config := flag.String("config", "", "JSON file of reloadable settings, applied at start and on SIGHUP (see docs/OBSERVABILITY.md)")
	metrics := flag.String("metrics", "", "address for /metrics, /debug/probes and /debug/pprof/, e.g. :9090 (empty = off)")
	showTopo := flag.Bool("topology", false, "print the machine's topology and the loop plan for these flags, then exit")
	asJSON := flag.Bool("json", false, "with -topology: print the topo/v1 JSON report")
	flag.Parse()

	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gogc)
	}

	var level slog.LevelVar // the control plane may change it at run time
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	sel, err := topology.ParseNUMA(*numa)
	if err != nil {
		return err
	}
	node := -1
	if !sel.Auto {
		node = sel.Node
	}
	if *showTopo {
		return report(*asJSON, sel, *workers, *addr)
	}

	// Build the server configuration from the flags.
	cfg := ws.DefaultConfig()
	cfg.ListenAddr = *addr
	cfg.BatchSize = *batch
	cfg.ReactorRing = *ring
	cfg.Workers = *workers
	cfg.NUMANode = node
	cfg.MaxFrameSize, cfg.MaxMessageSize = *maxMsg, *maxMsg
	cfg.MaxWriteQueue = *maxQueue
	cfg.MaxConns, cfg.MaxConnsPerIP = *maxConns, *maxPerIP
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	cfg.HandshakeTimeout, cfg.IdleTimeout = *handshake, *idle
	cfg.MaxHeapBytes = *maxHeap
	cfg.NoHugepages = !*hugepages
	cfg.ShutdownTimeout = *shutdown
	cfg.Logger = log

	// The server, with logging and panic recovery around the handler.
	srv, err := ws.NewServer(cfg, ws.WithLogLevel(&level), ws.WithMiddleware(ws.Logging(log), ws.Recovery(log)))
	if err != nil {
		return err
	}
	ctrl := srv.GetControl()

	// Handler metrics (processed, errors, latency), innermost so that it
	// times the handler alone.
	srv.UseMiddleware(ws.HandlerMetrics(ctrl))

	// Reloadable settings from the config file override the flags.
	if *config != "" {
		if err := ctrl.ReloadFile(*config); err != nil {
			return err
		}
	}

	// Debug probes.
	ctrl.RegisterDebugProbe("active_connections", func() any { return srv.Stats().Connections })
	ctrl.RegisterDebugProbe("messages_processed", func() any { return ctrl.HandlerStats().Processed })

	// Periodic stats.
	if *statsEvery > 0 {
		go func() {
			t := time.NewTicker(*statsEvery)
			defer t.Stop()
			for range t.C {
				st := ctrl.Stats()
				fmt.Printf("[%s] Active: %v, Msgs: %v\n", time.Now().Format(time.Stamp), st["active_connections"], st["messages_processed"])
			}
		}()
	}

	// The echo handler: reply with the same bytes, as text or binary like
	// the message came. WriteMessage does not copy: the reply leaves from
	// the buffer the message was read into.
	echo := ws.HandlerFunc(func(e *ws.Event) error {
		if e.Kind != ws.MessageEvent {
			return nil
		}
		return e.Conn.WriteMessage(e.Op, e.Data)
	})

	// Prometheus metrics, probes and pprof, only if asked for.
	var debug *http.Server
	var debugLn net.Listener
	if *metrics != "" {
		if debugLn, err = net.Listen("tcp", *metrics); err != nil {
			return fmt.Errorf("-metrics: %w", err)
		}
		debug = &http.Server{Handler: ws.NewDebugMux(srv, nil), ReadHeaderTimeout: 10 * time.Second}
		go debug.Serve(debugLn)
	}

	// SIGINT/SIGTERM: graceful shutdown. SIGHUP: reload the config file.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for s := range sig {
			if s == syscall.SIGHUP {
				reload(ctrl, *config, log)
				continue
			}
			fmt.Printf("Shutting down echo server (%s)...\n", s)
			if debug != nil {
				debug.Close()
			}
			if err := srv.Shutdown(); err != nil {
				log.Error("shutdown", "err", err)
			}
			return
		}
	}()

	fmt.Printf("echo: listening on %s\n", srv.Addr())
	if debugLn != nil {
		fmt.Printf("echo: metrics on http://%s/metrics\n", debugLn.Addr())
	}
	if err := srv.Run(echo); err != nil {
		return err
	}
	fmt.Println("Server stopped.")
	return nil
}

// reload applies the config file again (on SIGHUP) and logs the result; a
// bad file changes nothing.
func reload(ctrl *ws.Control, path string, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP: no -config file to reload")
		return
	}
	if err := ctrl.ReloadFile(path); err != nil {
		log.Error("SIGHUP: config not reloaded; settings unchanged", "err", err)
		return
	}
	lvl, _ := ctrl.LogLevel()
	log.Info("SIGHUP: config reloaded", "file", path, "log_level", lvl.String())
}

// report prints the topology and the plan the flags give, as text or as
// topo/v1 JSON (scripts/topology-report.sh checks the JSON against numactl
// and lstopo).
func report(asJSON bool, sel topology.Selector, workers int, addr string) error {
	topo, err := topology.Discover()
	if err != nil {
		return err
	}
	plan, err := topo.PlanFor(sel, workers, addr)
	if err != nil {
		return err
	}
	if asJSON {
		return topology.WriteJSON(os.Stdout, topo, plan)
	}
	return topology.WriteText(os.Stdout, topo, plan)
}
