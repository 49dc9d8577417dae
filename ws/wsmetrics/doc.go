// Package wsmetrics publishes a ws.Server's counters as Prometheus metrics
// and serves the usual debug endpoints next to them: /metrics and
// /debug/probes (the control plane's JSON), and /debug/pprof/ only when
// added with HandlePprof.
//
// It is a package of its own so that importing ws brings no metrics stack:
// a program that wants the metrics imports this one.
//
//	srv, _ := ws.NewServer(cfg)
//	mux := wsmetrics.NewDebugMux(srv, nil)
//	ln, _ := net.Listen("tcp", "127.0.0.1:9090") // loopback: operators only
//	go wsmetrics.NewHTTPServer(mux).Serve(ln)     // with read, write and idle timeouts
//
// The metrics are named hioload_*; each comes from a field of ws.Stats,
// ws.LoopStats or ws.Limits whose metric tag names it, so a counter added
// there is exported without a change here. docs/OBSERVABILITY.md lists them.
package wsmetrics
