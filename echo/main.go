// Command echo is hioload-ws's WebSocket echo server: every text or binary
// message a client sends comes back to it unchanged, from pinned event loops
// that write the reply from the very bytes they read.
//
//	echo -addr :9001 -batch 32 -ring 1024 -workers 0 -numa auto
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
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
	shutdown := flag.Duration("shutdown-timeout", 5*time.Second, "how long shutdown waits for clients to answer close 1001")
	statsEvery := flag.Duration("stats", 5*time.Second, "interval of the stats line (0 = off)")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	showTopo := flag.Bool("topology", false, "print the machine's topology and the loop plan for these flags, then exit")
	asJSON := flag.Bool("json", false, "with -topology: print the topo/v1 JSON report")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
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
	cfg.ShutdownTimeout = *shutdown
	cfg.Logger = log

	// The server, with logging and panic recovery around the handler.
	srv, err := ws.NewServer(cfg, ws.WithMiddleware(ws.Logging(log), ws.Recovery(log)))
	if err != nil {
		return err
	}

	// Periodic stats.
	if *statsEvery > 0 {
		go func() {
			t := time.NewTicker(*statsEvery)
			defer t.Stop()
			for range t.C {
				st := srv.Stats()
				fmt.Printf("[%s] Active: %d, Msgs: %d\n", time.Now().Format(time.Stamp), st.Connections, st.MessagesIn)
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

	// Graceful shutdown on SIGINT/SIGTERM.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Printf("Shutting down echo server (%s)...\n", s)
		if err := srv.Shutdown(); err != nil {
			log.Error("shutdown", "err", err)
		}
	}()

	fmt.Printf("echo: listening on %s\n", srv.Addr())
	if err := srv.Run(echo); err != nil {
		return err
	}
	fmt.Println("Server stopped.")
	return nil
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
