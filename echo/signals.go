package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hioload-ws/hioload-ws/ws"
)

// lifecycle is what the signals act on: the server, the admin listener, the
// probes' state and the config file.
type lifecycle struct {
	out    io.Writer // stdout, through its LogSink
	srv    *ws.Server
	admin  *http.Server // nil without -metrics
	health *health
	config *configFile // nil without -config
	drain  time.Duration
	log    *slog.Logger
}

// handleSignals reloads the config file on SIGHUP and shuts down on the
// first SIGINT or SIGTERM:
//
//  1. /readyz fails at once;
//  2. for -drain-delay the server keeps serving and accepting, so that
//     endpoints and load balancers stop sending new clients before anyone is
//     turned away (a second SIGINT or SIGTERM ends the delay early; SIGHUP
//     still reloads);
//  3. Shutdown: no more accepts, every message already read is answered,
//     every client gets close 1001 and has -shutdown-timeout to answer it;
//  4. the admin listener closes last, so /healthz answers to the end.
//
// Run then returns and the process exits 0.
func (lc *lifecycle) handleSignals() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for s := range sig {
			if s == syscall.SIGHUP {
				lc.hup()
				continue
			}
			lc.health.draining.Store(true)
			lc.wait(s, sig)
			lc.stop(s)
			return
		}
	}()
}

// wait serves on for the drain delay, or until a second SIGINT or SIGTERM.
func (lc *lifecycle) wait(first os.Signal, sig <-chan os.Signal) {
	if lc.drain <= 0 {
		return
	}
	fmt.Fprintf(lc.out, "Draining echo server (%s): not ready, serving for %s more...\n", first, lc.drain)
	lc.log.Info("drain: /readyz fails; serving and accepting until the delay ends", "delay", lc.drain)
	t := time.NewTimer(lc.drain)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case s := <-sig:
			if s == syscall.SIGHUP {
				lc.hup()
				continue
			}
			lc.log.Info("drain: cut short", "signal", s.String())
			return
		}
	}
}

// hup reloads the config file (SIGHUP); a bad file changes nothing.
func (lc *lifecycle) hup() {
	if lc.config == nil {
		lc.log.Warn("SIGHUP: no -config file to reload")
		return
	}
	lc.config.reload("SIGHUP")
}

func (lc *lifecycle) stop(s os.Signal) {
	fmt.Fprintf(lc.out, "Shutting down echo server (%s)...\n", s)
	lc.config.stopWatching()
	if err := lc.srv.Shutdown(); err != nil {
		lc.log.Error("shutdown", "err", err)
	}
	if lc.admin != nil {
		lc.admin.Close()
	}
}
