// Command load is the benchmark load generator for WebSocket echo servers.
//
// It opens many connections (from many source addresses on 127.0.0.0/8 so
// that large counts do not exhaust one address's ports), then either keeps
// -inflight messages outstanding on each (pipelined) or sends -rate messages per
// second in total (fixed rate). Every echo is compared byte for byte with what
// was sent; a difference is a failure. After -warmup it measures for -duration
// and prints one JSON line of results on stdout and a human line on stderr.
// With -pid it also reports the server's CPU time (utime+stime from
// /proc/PID/stat) per echoed message over the same window.
//
// With -idle it opens -conns upgraded connections, prints one JSON line
// {"ready":N} when all are open and holds them until SIGTERM or SIGINT arrives
// or -hold passes, so that a script can read the server's memory.
//
// With -deflate OFFER it offers permessage-deflate (RFC 7692) and sends
// JSON-like text compressed (deflate.go); the server must accept, and each
// echo must inflate to the message. Idle connections then each echo one
// compressed message before they are counted ready, so that the memory read
// is that of connections that have used compression (each echoes a 40 KiB
// message, which fills any history window).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	addr     string
	path     string
	label    string
	server   string
	scenario string
	conns    int
	inflight int
	rate     float64
	size     int
	text     bool
	warmup   time.Duration
	duration time.Duration
	srcFrom  netip.Addr
	srcCount int
	dialers  int
	bufSize  int
	pid      int
	idle     bool
	hold     time.Duration
	dialTime time.Duration
	profile  string
	deflate  string
}

func parseFlags() (config, error) {
	var cfg config
	var src string
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:9001", "server address host:port")
	flag.StringVar(&cfg.path, "path", "/", "request path of the upgrade")
	flag.StringVar(&cfg.label, "label", "", "free text copied into the JSON result")
	flag.StringVar(&cfg.server, "server", "", "server name copied into the JSON result")
	flag.StringVar(&cfg.scenario, "scenario", "", "scenario name copied into the JSON result")
	flag.IntVar(&cfg.conns, "conns", 100, "connections")
	flag.IntVar(&cfg.inflight, "inflight", 16, "messages in flight per connection (the cap in -rate mode)")
	flag.Float64Var(&cfg.rate, "rate", 0, "total messages per second across all connections; 0 = pipelined")
	flag.IntVar(&cfg.size, "size", 64, "payload bytes per message (≥ 1)")
	flag.BoolVar(&cfg.text, "text", false, "send text frames (ASCII payload) instead of binary")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "load before measuring")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "measurement window")
	flag.StringVar(&src, "src", "127.0.1.1", "first source address; connection i uses src + i%srcs")
	flag.IntVar(&cfg.srcCount, "srcs", 64, "number of consecutive source addresses on 127.0.0.0/8")
	flag.IntVar(&cfg.dialers, "dialers", 64, "concurrent dials and handshakes")
	flag.IntVar(&cfg.bufSize, "buf", 64<<10, "read and write buffer bytes per connection")
	flag.IntVar(&cfg.pid, "pid", 0, "server process id, for CPU time per message from /proc/PID/stat")
	flag.BoolVar(&cfg.idle, "idle", false, "open -conns idle connections, print {\"ready\":N}, hold them")
	flag.DurationVar(&cfg.hold, "hold", 5*time.Minute, "in -idle mode, the longest time to hold")
	flag.DurationVar(&cfg.dialTime, "dial-timeout", time.Minute, "the longest time to open all connections")
	flag.StringVar(&cfg.profile, "cpuprofile", "", "write the generator's CPU profile of the measurement window here")
	flag.StringVar(&cfg.deflate, "deflate", "", `offer permessage-deflate with this Sec-WebSocket-Extensions value (e.g. "permessage-deflate; client_max_window_bits") and send compressed JSON-like text`)
	flag.Parse()
	var err error
	if cfg.srcFrom, err = netip.ParseAddr(src); err != nil {
		return cfg, fmt.Errorf("load: -src: %w", err)
	}
	if !cfg.srcFrom.Is4() || cfg.srcFrom.As4()[0] != 127 {
		return cfg, errors.New("load: -src must be on 127.0.0.0/8")
	}
	switch {
	case cfg.conns < 1, cfg.inflight < 1, cfg.size < 1, cfg.srcCount < 1, cfg.dialers < 1:
		return cfg, errors.New("load: -conns, -inflight, -size, -srcs and -dialers must be positive")
	case cfg.rate < 0:
		return cfg, errors.New("load: -rate must not be negative")
	case cfg.deflate != "" && cfg.size < 16:
		return cfg, errors.New("load: -deflate needs -size of at least 16")
	}
	if cfg.deflate != "" {
		cfg.text = true
	}
	return cfg, nil
}

// srcAddr returns the source address of connection i.
func (cfg *config) srcAddr(i int) netip.Addr {
	a := cfg.srcFrom.As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i % cfg.srcCount)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// run is the state shared by all connections of one invocation.
type run struct {
	cfg       config
	start     time.Time
	measuring atomic.Bool
	stopping  atomic.Bool
	stop      chan struct{}
	hist      histogram
	conns     []*loadConn
	failed    atomic.Int64 // connections that ended with an error before the stop
	firstErr  atomic.Pointer[error]
}

func (r *run) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *run) fail(err error) {
	if r.stopping.Load() {
		return
	}
	r.failed.Add(1)
	r.firstErr.CompareAndSwap(nil, &err)
}

// result is the JSON line the generator prints.
type result struct {
	Label          string  `json:"label,omitempty"`
	Server         string  `json:"server,omitempty"`
	Scenario       string  `json:"scenario,omitempty"`
	Addr           string  `json:"addr"`
	Conns          int     `json:"conns"`
	Inflight       int     `json:"inflight"`
	Rate           float64 `json:"rate"`
	Size           int     `json:"size"`
	Text           bool    `json:"text"`
	Seconds        float64 `json:"seconds"`
	Msgs           uint64  `json:"msgs"`
	MsgsPerSec     float64 `json:"msgs_per_s"`
	MiBPerSec      float64 `json:"mib_per_s"`
	P50us          float64 `json:"p50_us"`
	P99us          float64 `json:"p99_us"`
	P999us         float64 `json:"p999_us"`
	MaxUs          float64 `json:"max_us"`
	ServerCPUs     float64 `json:"server_cpu_s"`
	ServerCPUusMsg float64 `json:"server_cpu_us_per_msg"`
	GenCPUusMsg    float64 `json:"gen_cpu_us_per_msg"`
	Deflate        string  `json:"deflate,omitempty"`
	WireBytesMsg   float64 `json:"echo_wire_bytes,omitempty"` // with -deflate: echo payload bytes on the wire, per message
	Mismatches     uint64  `json:"mismatches"`
	ConnErrors     int64   `json:"conn_errors"`
	DialErrors     int64   `json:"dial_errors"`
	Error          string  `json:"error,omitempty"`
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r := &run{cfg: cfg, stop: make(chan struct{})}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	conns, dialErrs, err := r.dialAll(ctx)
	if cfg.idle {
		os.Exit(r.holdIdle(ctx, conns, dialErrs, err))
	}
	res := result{Label: cfg.label, Server: cfg.server, Scenario: cfg.scenario, Addr: cfg.addr, Conns: cfg.conns, Inflight: cfg.inflight,
		Rate: cfg.rate, Size: cfg.size, Text: cfg.text, Deflate: cfg.deflate, DialErrors: dialErrs}
	if err == nil {
		r.measure(ctx, conns, &res)
	}
	if err != nil {
		res.Error = err.Error()
	} else if p := r.firstErr.Load(); p != nil {
		res.Error = (*p).Error()
	}
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	fmt.Fprintf(os.Stderr, "%s %s %s size=%d text=%v conns=%d inflight=%d rate=%g: %.0f msg/s, %.2f MiB/s, p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs, server CPU %.3f µs/msg, generator CPU %.3f µs/msg, mismatches %d, conn errors %d, dial errors %d %s\n",
		cfg.server, cfg.scenario, cfg.label, cfg.size, cfg.text, cfg.conns, cfg.inflight, cfg.rate, res.MsgsPerSec, res.MiBPerSec, res.P50us, res.P99us, res.P999us,
		res.ServerCPUusMsg, res.GenCPUusMsg, res.Mismatches, res.ConnErrors, res.DialErrors, res.Error)
	if res.Error != "" || res.Mismatches > 0 || res.ConnErrors > 0 || res.DialErrors > 0 || res.Msgs == 0 {
		os.Exit(1)
	}
}

type opened struct {
	c  net.Conn
	br *bufio.Reader
	z  *deflateParams // permessage-deflate agreed; nil without -deflate
}

// dialAll opens cfg.conns connections with cfg.dialers workers.
func (r *run) dialAll(ctx context.Context) ([]opened, int64, error) {
	cfg := &r.cfg
	if cfg.dialTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.dialTime)
		defer cancel()
	}
	out := make([]opened, cfg.conns)
	var next atomic.Int64
	var errs atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	bufSize := cfg.bufSize
	if cfg.idle {
		bufSize = 4096 // idle connections read only the handshake
	}
	for range min(cfg.dialers, cfg.conns) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.conns || ctx.Err() != nil {
					return
				}
				c, br, z, err := dial(ctx, cfg.srcAddr(i), cfg.addr, cfg.path, cfg.deflate, bufSize)
				if err == nil && cfg.idle && z != nil {
					err = primeIdle(c, br, z, uint64(i))
				}
				if err != nil {
					errs.Add(1)
					first.CompareAndSwap(nil, &err)
					continue
				}
				out[i] = opened{c, br, z}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && first.Load() == nil {
		err = fmt.Errorf("load: opening connections: %w", err)
		first.Store(&err)
	}
	if p := first.Load(); p != nil {
		for _, o := range out {
			if o.c != nil {
				o.c.Close()
			}
		}
		return nil, errs.Load(), fmt.Errorf("load: %d of %d connections failed; first: %w", errs.Load(), cfg.conns, *p)
	}
	return out, 0, nil
}

func (r *run) holdIdle(ctx context.Context, conns []opened, dialErrs int64, err error) int {
	if err != nil {
		line, _ := json.Marshal(map[string]any{"ready": 0, "dial_errors": dialErrs, "error": err.Error()})
		fmt.Println(string(line))
		return 1
	}
	fmt.Printf("{\"ready\":%d}\n", len(conns))
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.hold):
	}
	for _, o := range conns {
		o.c.Close()
	}
	return 0
}

// measure starts the load on every connection, waits out the warm-up, measures
// for cfg.duration and fills res.
func (r *run) measure(ctx context.Context, conns []opened, res *result) {
	cfg := &r.cfg
	r.start = time.Now()
	var wg sync.WaitGroup
	msgs := []*message{newMessage(cfg.size, cfg.text)}
	if cfg.deflate != "" {
		msgs = newCompressedMessages(cfg.size)
	}
	for i, o := range conns {
		lc := &loadConn{r: r, c: o.c, br: o.br, msg: msgs[0], frame: newClientFrame(msgs, uint64(i)),
			sent: make([]atomic.Int64, cfg.inflight), wake: make(chan struct{}, 1)}
		if o.z != nil {
			lc.z = &inflater{p: o.z}
		}
		lc.credits.Store(int64(cfg.inflight))
		if cfg.rate > 0 {
			lc.interval = time.Duration(float64(cfg.conns) / cfg.rate * float64(time.Second))
			lc.phase = lc.interval * time.Duration(i) / time.Duration(cfg.conns)
		}
		r.conns = append(r.conns, lc)
		wg.Go(func() {
			if err := lc.writeLoop(); err != nil {
				r.fail(err)
			}
		})
		wg.Go(func() {
			if err := lc.readLoop(); err != nil {
				r.fail(err)
			}
		})
	}
	sleep(ctx, cfg.warmup)
	cpu0, cpuErr := serverCPU(cfg.pid)
	gen0 := selfCPU()
	n0, t0 := r.echoed(), time.Now()
	stopProfile := startProfile(cfg.profile)
	r.measuring.Store(true)
	sleep(ctx, cfg.duration)
	r.measuring.Store(false)
	stopProfile()
	n1, t1 := r.echoed(), time.Now()
	cpu1, cpuErr1 := serverCPU(cfg.pid)
	gen1 := selfCPU()
	r.stopping.Store(true)
	close(r.stop)
	for _, lc := range r.conns {
		lc.c.Close()
	}
	wg.Wait()

	res.Seconds = t1.Sub(t0).Seconds()
	res.Msgs = n1 - n0
	res.MsgsPerSec = float64(res.Msgs) / res.Seconds
	res.MiBPerSec = res.MsgsPerSec * float64(cfg.size) / (1 << 20)
	res.P50us = float64(r.hist.quantile(0.50)) / 1e3
	res.P99us = float64(r.hist.quantile(0.99)) / 1e3
	res.P999us = float64(r.hist.quantile(0.999)) / 1e3
	res.MaxUs = float64(r.hist.maxValue()) / 1e3
	if cfg.pid > 0 && cpuErr == nil && cpuErr1 == nil && res.Msgs > 0 {
		res.ServerCPUs = (cpu1 - cpu0).Seconds()
		res.ServerCPUusMsg = float64((cpu1 - cpu0).Nanoseconds()) / 1e3 / float64(res.Msgs)
	} else if cfg.pid > 0 {
		r.fail(errors.Join(errors.New("load: server CPU unknown"), cpuErr, cpuErr1))
	}
	if res.Msgs > 0 {
		res.GenCPUusMsg = float64((gen1 - gen0).Nanoseconds()) / 1e3 / float64(res.Msgs)
	}
	var wire, echoed uint64
	for _, lc := range r.conns {
		res.Mismatches += lc.st.mismatches.Load()
		wire += lc.st.wireBytes.Load()
		echoed += lc.st.echoed.Load()
	}
	if cfg.deflate != "" && echoed > 0 {
		res.WireBytesMsg = float64(wire) / float64(echoed)
	}
	res.ConnErrors = r.failed.Load()
	if ctx.Err() != nil {
		r.stopping.Store(false)
		r.fail(errors.New("load: interrupted"))
	}
}

func (r *run) echoed() uint64 {
	var n uint64
	for _, lc := range r.conns {
		n += lc.st.echoed.Load()
	}
	return n
}

// startProfile starts a CPU profile into path ("" = none) and returns its stop.
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load: cpuprofile:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
