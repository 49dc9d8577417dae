package main

import (
	"net/http"
	"sync/atomic"
)

// health is what the orchestrator's probes ask on the admin address
// (-metrics):
//
//	GET /healthz  200 "ok" while the process runs: liveness. It stays 200
//	              through the drain and the shutdown, so that the kubelet
//	              does not kill a pod that is leaving on purpose.
//	GET /readyz   200 "ready" once the listening sockets are bound (the
//	              loops start right after; connections wait in the
//	              backlog meanwhile); 503 "starting" before, and 503 "draining"
//	              from the first moment of shutdown (the first SIGTERM or
//	              SIGINT), so that endpoints and load balancers stop
//	              sending new clients while the server still serves.
//
// The state changes from the main and signal goroutines; the HTTP server's
// goroutines read it.
type health struct {
	ready    atomic.Bool
	draining atomic.Bool
}

// state returns the readiness answer.
func (h *health) state() (int, string) {
	switch {
	case h.draining.Load():
		return http.StatusServiceUnavailable, "draining\n"
	case !h.ready.Load():
		return http.StatusServiceUnavailable, "starting\n"
	}
	return http.StatusOK, "ready\n"
}

// wrap serves /healthz and /readyz and hands every other request to next.
func (h *health) wrap(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, r, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		code, body := h.state()
		reply(w, r, code, body)
	})
	mux.Handle("/", next)
	return mux
}

// reply answers a probe: GET or HEAD only.
func reply(w http.ResponseWriter, r *http.Request, code int, body string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		code, body = http.StatusMethodNotAllowed, "method not allowed\n"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(body))
}
