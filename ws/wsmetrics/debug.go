package wsmetrics

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hioload-ws/hioload-ws/ws"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors and the server's hioload_* metrics (NewCollector).
func NewRegistry(s *ws.Server) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(s),
	)
	return reg
}

// NewDebugMux returns a mux serving the server's metrics:
//
//	/metrics        Prometheus metrics from g (NewRegistry(s) if g is nil)
//	/debug/probes   JSON of Control.Stats
//
// The profiles are not on it: HandlePprof adds them, for those who ask.
// The handlers are registered on this mux only, never on
// http.DefaultServeMux. Serve it with NewHTTPServer, on an address of its
// own (loopback or a private network), not on the public one: the probes
// show the server's internals.
func NewDebugMux(s *ws.Server, g prometheus.Gatherer) *http.ServeMux {
	if g == nil {
		g = NewRegistry(s)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/probes", func(w http.ResponseWriter, r *http.Request) {
		serveProbes(w, s.GetControl().Stats())
	})
	return mux
}

// HandlePprof adds the runtime profiles to mux under /debug/pprof/: the
// index, every named profile (heap, goroutine, allocs, block, mutex,
// threadcreate), a CPU profile and an execution trace of up to 5 minutes,
// and the command line. They show the program's memory, stacks and
// arguments to whoever can reach them, and a CPU profile or trace costs
// the server while it runs: add them only on a listener that only
// operators reach, and only when asked (echo: -pprof).
func HandlePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprofIndex)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprofCmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprofCPU)
	mux.HandleFunc("GET /debug/pprof/trace", pprofTrace)
}

// The debug listener's timeouts (NewHTTPServer). A scrape is a small
// request and a quick answer; a client that dawdles is cut off.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second // a CPU profile or trace extends its own (pprofDeadline)
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// NewHTTPServer returns an http.Server for the debug mux with bounded
// timeouts, so that idle or slow clients cannot pile up connections: 5 s
// to send the request header, 10 s for the whole request, 30 s to take the
// response (a CPU profile or trace extends its own deadline by its
// duration), 60 s for an idle keep-alive connection, 16 KiB of header.
// The caller serves it (srv.Serve(ln)) and may change the fields before.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// serveProbes writes stats as one JSON object; a value that cannot be
// encoded shows as {"error": ...} instead of failing the page.
func serveProbes(w http.ResponseWriter, stats map[string]any) {
	out := make(map[string]json.RawMessage, len(stats))
	for k, v := range stats {
		b, err := json.Marshal(v)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		out[k] = b
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// The pprof handlers are written here on runtime/pprof rather than taken
// from net/http/pprof, whose init registers them on http.DefaultServeMux in
// every program that imports it: a library must not publish its users'
// profiles on their default mux behind their back.

func pprofIndex(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/")
	if name != "" {
		pprofNamed(w, r, name)
		return
	}
	profiles := pprof.Profiles()
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name() < profiles[j].Name() })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<html><head><title>/debug/pprof/</title></head><body><p>/debug/pprof/</p><table>\n")
	for _, p := range profiles {
		n := html.EscapeString(p.Name())
		fmt.Fprintf(w, "<tr><td>%d</td><td><a href=\"%s?debug=1\">%s</a></td></tr>\n", p.Count(), n, n)
	}
	fmt.Fprint(w, "</table><p><a href=\"profile?seconds=30\">profile</a> (CPU, 30s) · "+
		"<a href=\"trace?seconds=1\">trace</a> (1s) · <a href=\"cmdline\">cmdline</a></p></body></html>\n")
}

func pprofNamed(w http.ResponseWriter, r *http.Request, name string) {
	p := pprof.Lookup(name)
	if p == nil {
		http.Error(w, "unknown profile "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if name == "heap" && r.FormValue("gc") != "" {
		runtime.GC()
	}
	if debug > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	p.WriteTo(w, debug)
}

func pprofCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(os.Args, "\x00"))
}

// pprofSeconds reads ?seconds= (default def, at most 5 minutes).
func pprofSeconds(r *http.Request, def int) time.Duration {
	sec, err := strconv.Atoi(r.FormValue("seconds"))
	if err != nil || sec <= 0 {
		sec = def
	}
	return time.Duration(min(sec, 300)) * time.Second
}

// pprofDeadline gives a profile of d the time to be taken and sent, past
// the server's WriteTimeout.
func pprofDeadline(w http.ResponseWriter, d time.Duration) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + writeTimeout))
}

func pprofCPU(w http.ResponseWriter, r *http.Request) {
	d := pprofSeconds(r, 30)
	pprofDeadline(w, d)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	if err := pprof.StartCPUProfile(w); err != nil {
		http.Error(w, "cannot start CPU profile: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sleep(r, d)
	pprof.StopCPUProfile()
}

func pprofTrace(w http.ResponseWriter, r *http.Request) {
	d := pprofSeconds(r, 1)
	pprofDeadline(w, d)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
	if err := trace.Start(w); err != nil {
		http.Error(w, "cannot start trace: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sleep(r, d)
	trace.Stop()
}

// sleep waits d or until the client goes away.
func sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}
