// Command report turns the JSON lines written by scripts/bench.sh (one per
// run of cmd/load, plus one per idle-memory run) into the benchmark tables:
// medians over repeats of messages/s, server CPU per message, latency at the
// fixed rate and resident memory per idle connection, each with its ratio to
// the best peer. With -png it also draws throughput and server CPU per
// message by payload size.
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

// ours names our server; every other server is a peer.
const ours = "hioload-ws"

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
		return boolInt(b == ours) - boolInt(a == ours) // ours first
	})
	return d, sc.Err()
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
// scenarios as columns; each cell is "median (ratio to the best peer)".
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
	fmt.Fprintf(w, "\n%s, %s; median (ratio to the best peer)\n\n", m.title, m.unit)
	fmt.Fprintf(w, "| server | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
	best := map[string]float64{}
	for _, s := range cols {
		for _, srv := range d.servers {
			if srv == ours {
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
		if srv == ours {
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

// versusTable compares ours with the best peer in each column of the ranking
// metrics, with the spread of both cells, so a reader sees at once where ours
// is behind and whether the gap is larger than the noise.
func (d *data) versusTable(w io.Writer) {
	if !slices.Contains(d.servers, ours) {
		return
	}
	fmt.Fprintf(w, "\nOurs against the best peer (lower is better; spread = (max − min) / median over repeats)\n\n")
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
			v, _, ok := d.median(key{ours, s}, row.m.value)
			if !ok {
				fmt.Fprintf(w, "| %s | %s | failed | | | |\n", s, row.name)
				continue
			}
			bestName, best := "", 0.0
			for _, srv := range d.servers {
				if pv, _, ok := d.median(key{srv, s}, row.m.value); ok && srv != ours && pv > 0 && (bestName == "" || pv < best) {
					bestName, best = srv, pv
				}
			}
			if bestName == "" {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s %s | %+.0f%% | %s / %s |\n", s, row.name, row.m.format(v), bestName,
				row.m.format(best), (v/best-1)*100, d.spread(key{ours, s}, row.m.value), d.spread(key{bestName, s}, row.m.value))
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
