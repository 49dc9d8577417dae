// Command report turns the JSON lines written by scripts/bench.sh (one per
// run of cmd/load, plus one per idle-memory run) into the benchmark tables:
// medians over repeats of messages/s, server CPU per message, latency at the
// fixed rate and resident memory per idle connection, each with its ratio to
// the best Go peer; then ours (the better of our io engines in each cell)
// against the best Go peer, and against uWebSockets with the targets of
// issue 16 when a run of it is in the file. With -png it also draws
// throughput and server CPU per message by payload size.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// record is one line of the results file; load and idle runs share it.
type record struct {
	Server         string  `json:"server"`
	Scenario       string  `json:"scenario"`
	MsgsPerSec     float64 `json:"msgs_per_s"`
	ServerCPUusMsg float64 `json:"server_cpu_us_per_msg"`
	GenCPUusMsg    float64 `json:"gen_cpu_us_per_msg"`
	P50us          float64 `json:"p50_us"`
	P99us          float64 `json:"p99_us"`
	P999us         float64 `json:"p999_us"`
	Mismatches     uint64  `json:"mismatches"`
	ConnErrors     int64   `json:"conn_errors"`
	DialErrors     int64   `json:"dial_errors"`
	Error          string  `json:"error"`
	BytesPerConn   float64 `json:"bytes_per_conn"`
	WireBytesMsg   float64 `json:"echo_wire_bytes"`
	RSSBeforeKB    float64 `json:"rss_before_kb"`
	RSSAfterKB     float64 `json:"rss_after_kb"`
	Failed         bool    `json:"failed"`
}

func (r *record) ok() bool {
	return !r.Failed && r.Error == "" && r.Mismatches == 0 && r.ConnErrors == 0 && r.DialErrors == 0
}

// scenarioOrder is the column order; unknown scenarios follow in input order.
var scenarioOrder = []string{"64B", "1KiB", "16KiB", "1MiB", "2000x1", "rate20k", "idle",
	"z1KiB", "z16KiB", "zc1KiB", "zc16KiB", "idle-z", "idle-zc"}

// isIdle reports whether a scenario measures idle memory rather than load.
func isIdle(s string) bool { return strings.HasPrefix(s, "idle") }

// isCompressed reports whether a scenario runs permessage-deflate.
func isCompressed(s string) bool { return strings.HasPrefix(s, "z") || strings.HasPrefix(s, "idle-z") }

// ours names our server (run with the io engine auto chooses); servers
// named ours+"-"+engine are ours with that engine forced. uws is
// uWebSockets, the C++ reference; every other server is a Go peer.
const (
	ours = "hioload-ws"
	uws  = "uws"
)

func isOurs(srv string) bool { return srv == ours || strings.HasPrefix(srv, ours+"-") }

// isGoPeer is what "the best peer" ranges over.
func isGoPeer(srv string) bool { return !isOurs(srv) && srv != uws }

type key struct{ server, scenario string }

type data struct {
	servers   []string
	scenarios []string
	runs      map[key][]record
}

func load(r io.Reader) (*data, error) {
	d := &data{runs: map[key][]record{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, fmt.Errorf("report: %q: %w", line, err)
		}
		if rec.Server == "" || rec.Scenario == "" {
			continue
		}
		if !slices.Contains(d.servers, rec.Server) {
			d.servers = append(d.servers, rec.Server)
		}
		if !slices.Contains(d.scenarios, rec.Scenario) {
			d.scenarios = append(d.scenarios, rec.Scenario)
		}
		k := key{rec.Server, rec.Scenario}
		d.runs[k] = append(d.runs[k], rec)
	}
	slices.SortStableFunc(d.scenarios, func(a, b string) int { return rank(a) - rank(b) })
	slices.SortStableFunc(d.servers, func(a, b string) int {
		// ours first (auto, then forced engines), then uWebSockets, then the Go peers
		return order(a) - order(b)
	})
	return d, sc.Err()
}

func order(srv string) int {
	switch {
	case srv == ours:
		return 0
	case isOurs(srv):
		return 1
	case srv == uws:
		return 2
	}
	return 3
}

func rank(s string) int {
	if i := slices.Index(scenarioOrder, s); i >= 0 {
		return i
	}
	return len(scenarioOrder)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// median returns the median of f over the successful runs of k and how many
// runs failed; ok is false when no run succeeded.
func (d *data) median(k key, f func(*record) float64) (v float64, failed int, ok bool) {
	var xs []float64
	for i := range d.runs[k] {
		r := &d.runs[k][i]
		if !r.ok() {
			failed++
			continue
		}
		xs = append(xs, f(r))
	}
	if len(xs) == 0 {
		return 0, failed, false
	}
	slices.Sort(xs)
	if n := len(xs); n%2 == 1 {
		return xs[n/2], failed, true
	} else {
		return (xs[n/2-1] + xs[n/2]) / 2, failed, true
	}
}

// metric is one table: which scenarios it covers and how to read a run.
type metric struct {
	title     string
	unit      string
	higherBad bool // true when lower is better
	format    func(float64) string
	value     func(*record) float64
	applies   func(scenario string) bool
}

var metrics = []metric{
	{"Server CPU time per echoed message (lower is better; ranks servers)", "µs/msg", true, fixed,
		func(r *record) float64 { return r.ServerCPUusMsg }, func(s string) bool { return !isIdle(s) }},
	{"Messages echoed per second (one generator core; the best servers saturate the generator, not themselves)", "msg/s", false, si,
		func(r *record) float64 { return r.MsgsPerSec }, func(s string) bool { return !isIdle(s) }},
	{"Latency p99 at a fixed 20,000 msg/s over 200 connections", "µs", true, fixed,
		func(r *record) float64 { return r.P99us }, func(s string) bool { return strings.HasPrefix(s, "rate") }},
	{"Latency p50 at a fixed 20,000 msg/s over 200 connections", "µs", true, fixed,
		func(r *record) float64 { return r.P50us }, func(s string) bool { return strings.HasPrefix(s, "rate") }},
	{"Resident memory per idle connection at 19,000 connections", "bytes", true, fixed,
		func(r *record) float64 { return r.BytesPerConn }, isIdle},
	{"Resident memory just after start, before the idle connections (what the per-connection figure does not count)", "kB", true, fixed,
		func(r *record) float64 { return r.RSSBeforeKB }, isIdle},
	{"Resident memory with 19,000 idle connections", "kB", true, fixed,
		func(r *record) float64 { return r.RSSAfterKB }, isIdle},
	{"Compressed echo payload on the wire per message", "bytes", true, fixed,
		func(r *record) float64 { return r.WireBytesMsg }, func(s string) bool { return isCompressed(s) && !isIdle(s) }},
}

// fixed shows three significant digits without an exponent.
func fixed(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// si shows a rate with a k or M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// table writes one metric as a markdown table, servers as rows and
// scenarios as columns; each cell is "median (ratio to the best Go peer)".
func (d *data) table(w io.Writer, m metric) {
	var cols []string
	for _, s := range d.scenarios {
		if m.applies(s) {
			cols = append(cols, s)
		}
	}
	if len(cols) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s, %s; median (ratio to the best Go peer)\n\n", m.title, m.unit)
	fmt.Fprintf(w, "| server | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
	best := map[string]float64{}
	for _, s := range cols {
		for _, srv := range d.servers {
			if !isGoPeer(srv) {
				continue
			}
			v, _, ok := d.median(key{srv, s}, m.value)
			if !ok || v <= 0 {
				continue
			}
			if b, seen := best[s]; !seen || (m.higherBad && v < b) || (!m.higherBad && v > b) {
				best[s] = v
			}
		}
	}
	for _, srv := range d.servers {
		cells := make([]string, len(cols))
		for i, s := range cols {
			v, failed, ok := d.median(key{srv, s}, m.value)
			switch {
			case !ok && failed == 0:
				cells[i] = "–"
			case !ok:
				cells[i] = fmt.Sprintf("failed ×%d", failed)
			default:
				cells[i] = m.format(v)
				if b := best[s]; b > 0 {
					cells[i] += fmt.Sprintf(" (%.2f×)", v/b)
				}
				if failed > 0 {
					cells[i] += fmt.Sprintf(" !%d failed", failed)
				}
			}
		}
		name := srv
		if isOurs(srv) {
			name = "**" + srv + "**"
		}
		fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
}

// spreadTable shows, for server CPU per message, how far apart the repeats
// were: (max − min) / median over the successful runs.
func (d *data) spreadTable(w io.Writer) {
	var cols []string
	for _, s := range d.scenarios {
		if !isIdle(s) {
			cols = append(cols, s)
		}
	}
	if len(cols) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSpread of server CPU per message over repeats, (max − min) / median\n\n")
	fmt.Fprintf(w, "| server | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
	for _, srv := range d.servers {
		cells := make([]string, len(cols))
		for i, s := range cols {
			cells[i] = d.spread(key{srv, s}, func(r *record) float64 { return r.ServerCPUusMsg })
		}
		fmt.Fprintf(w, "| %s | %s |\n", srv, strings.Join(cells, " | "))
	}
}

// bestOurs is the best median of ours in scenario s over our servers
// (engines), and which one it is.
func (d *data) bestOurs(s string, m metric) (string, float64, bool) {
	name, best := "", 0.0
	for _, srv := range d.servers {
		if !isOurs(srv) {
			continue
		}
		if v, _, ok := d.median(key{srv, s}, m.value); ok && (name == "" || m.better(v, best)) {
			name, best = srv, v
		}
	}
	return name, best, name != ""
}

// bestGoPeer is the best median of the Go peers in scenario s.
func (d *data) bestGoPeer(s string, m metric) (string, float64, bool) {
	name, best := "", 0.0
	for _, srv := range d.servers {
		if !isGoPeer(srv) {
			continue
		}
		if v, _, ok := d.median(key{srv, s}, m.value); ok && v > 0 && (name == "" || m.better(v, best)) {
			name, best = srv, v
		}
	}
	return name, best, name != ""
}

// better reports whether v beats w for this metric.
func (m metric) better(v, w float64) bool {
	if m.higherBad {
		return v < w
	}
	return v > w
}

// versusTable compares ours (the better engine in each cell) with the best
// Go peer in each column of the ranking metrics, with the spread of both
// cells, so a reader sees at once where ours is behind and whether the gap
// is larger than the noise.
func (d *data) versusTable(w io.Writer) {
	if !slices.ContainsFunc(d.servers, isOurs) {
		return
	}
	fmt.Fprintf(w, "\nOurs (the better io engine) against the best Go peer (lower is better; spread = (max − min) / median over repeats)\n\n")
	fmt.Fprintf(w, "| scenario | metric | ours | best peer | difference | spread ours / peer |\n|---|---|---:|---:|---:|---:|\n")
	rows := []struct {
		name string
		m    metric
	}{{"server CPU µs/msg", metrics[0]}, {"p99 µs", metrics[2]}, {"RSS B/conn", metrics[4]}}
	for _, s := range d.scenarios {
		for _, row := range rows {
			if !row.m.applies(s) {
				continue
			}
			srv, v, ok := d.bestOurs(s, row.m)
			if !ok {
				fmt.Fprintf(w, "| %s | %s | failed | | | |\n", s, row.name)
				continue
			}
			bestName, best, ok := d.bestGoPeer(s, row.m)
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s %s | %s %s | %+.0f%% | %s / %s |\n", s, row.name, srv, row.m.format(v), bestName,
				row.m.format(best), (v/best-1)*100, d.spread(key{srv, s}, row.m.value), d.spread(key{bestName, s}, row.m.value))
		}
	}
}

// targetTable checks ours (the better engine in each cell) against the
// targets issue 16 set: server CPU per message at most 0.8× uWebSockets'
// (64B, 1KiB, 16KiB, 2000x1, rate20k), at most gobwas's at 1MiB, p99 at
// the fixed rate no worse than the best Go peer's, and at most 250 bytes
// per idle connection.
func (d *data) targetTable(w io.Writer) {
	if !slices.ContainsFunc(d.servers, isOurs) || !slices.Contains(d.servers, uws) {
		return
	}
	fmt.Fprintf(w, "\nOurs (the better io engine) against the targets: CPU per message ≤ 0.8× uWebSockets (≤ gobwas at 1MiB), p99 ≤ the best Go peer, ≤ 250 B per idle connection\n\n")
	fmt.Fprintf(w, "| scenario | metric | ours | reference | ratio | target | met |\n|---|---|---:|---:|---:|---:|:---:|\n")
	cpu, p99, idle := metrics[0], metrics[2], metrics[4]
	row := func(s, name string, m metric, refName string, ref float64, limit float64, target string) {
		srv, v, ok := d.bestOurs(s, m)
		if !ok || ref <= 0 {
			return
		}
		met := "yes"
		if v/ref > limit+1e-9 {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s %s | %s %s | %.2f× | %s | %s |\n", s, name, srv, m.format(v), refName, m.format(ref), v/ref, target, met)
	}
	for _, s := range d.scenarios {
		switch {
		case s == "idle":
			if _, v, ok := d.bestOurs(s, idle); ok {
				u, _, _ := d.median(key{uws, s}, idle.value)
				met := "yes"
				if v > 250 {
					met = "**no**"
				}
				srv, _, _ := d.bestOurs(s, idle)
				fmt.Fprintf(w, "| idle | RSS B/conn | %s %s | uws %s | %.2f× | ≤ 250 B | %s |\n", srv, idle.format(v), idle.format(u), v/max(u, 1), met)
			}
		case s == "1MiB":
			if g, _, ok := d.median(key{"gobwas", s}, cpu.value); ok {
				row(s, "server CPU µs/msg", cpu, "gobwas", g, 1, "≤ 1× gobwas")
			}
		case cpu.applies(s):
			if u, _, ok := d.median(key{uws, s}, cpu.value); ok {
				row(s, "server CPU µs/msg", cpu, "uws", u, 0.8, "≤ 0.8× uws")
			}
			if p99.applies(s) {
				if name, best, ok := d.bestGoPeer(s, p99); ok {
					row(s, "p99 µs", p99, name, best, 1, "≤ 1× best Go peer")
				}
			}
		}
	}
}

// spread is (max − min) / median of f over the successful runs of k.
func (d *data) spread(k key, f func(*record) float64) string {
	var xs []float64
	for i := range d.runs[k] {
		if r := &d.runs[k][i]; r.ok() {
			xs = append(xs, f(r))
		}
	}
	med, _, ok := d.median(k, f)
	if !ok || med <= 0 || len(xs) < 2 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", (slices.Max(xs)-slices.Min(xs))/med*100)
}

// failures lists every failed run so that a wrong echo is never hidden.
func (d *data) failures(w io.Writer) int {
	n := 0
	for _, srv := range d.servers {
		for _, s := range d.scenarios {
			for _, r := range d.runs[key{srv, s}] {
				if !r.ok() {
					n++
					fmt.Fprintf(w, "FAILED %s %s: mismatches %d, conn errors %d, dial errors %d, %s\n",
						srv, s, r.Mismatches, r.ConnErrors, r.DialErrors, r.Error)
				}
			}
		}
	}
	return n
}

func main() {
	in := flag.String("in", "-", "results file of JSON lines (- for stdin)")
	png := flag.String("png", "", "also draw throughput and CPU per message by payload size into this PNG")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		r = f
	}
	d, err := load(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, m := range metrics {
		d.table(os.Stdout, m)
	}
	d.spreadTable(os.Stdout)
	d.versusTable(os.Stdout)
	d.targetTable(os.Stdout)
	fmt.Println()
	failed := d.failures(os.Stdout)
	if *png != "" {
		if err := d.plot(*png); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
