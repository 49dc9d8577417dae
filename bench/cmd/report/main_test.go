package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `{"server":"gnet","scenario":"64B","msgs_per_s":100,"server_cpu_us_per_msg":2}
{"server":"gnet","scenario":"64B","msgs_per_s":300,"server_cpu_us_per_msg":1}
{"server":"gnet","scenario":"64B","msgs_per_s":200,"server_cpu_us_per_msg":9}
{"server":"hioload-ws","scenario":"64B","msgs_per_s":400,"server_cpu_us_per_msg":1}
{"server":"hioload-ws","scenario":"64B","msgs_per_s":0,"mismatches":1,"error":"load: echo differs"}
{"server":"gnet","scenario":"idle","bytes_per_conn":600,"rss_before_kb":6000,"rss_after_kb":17000}
{"server":"hioload-ws","scenario":"idle","failed":true,"error":"idle connections did not all open"}
not json: a progress line
`

func TestMedianSkipsFailedRuns(t *testing.T) {
	d, err := load(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	cpu := func(r *record) float64 { return r.ServerCPUusMsg }
	tests := []struct {
		name       string
		k          key
		want       float64
		wantFailed int
		wantOK     bool
	}{
		{"odd count", key{"gnet", "64B"}, 2, 0, true},
		{"one failed of two", key{"hioload-ws", "64B"}, 1, 1, true},
		{"all failed", key{"hioload-ws", "idle"}, 0, 1, false},
		{"no runs", key{"gws", "64B"}, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, failed, ok := d.median(tc.k, cpu)
			if v != tc.want || failed != tc.wantFailed || ok != tc.wantOK {
				t.Fatalf("median = %v, %d, %v; want %v, %d, %v", v, failed, ok, tc.want, tc.wantFailed, tc.wantOK)
			}
		})
	}
}

func TestTableRatiosAndFailures(t *testing.T) {
	d, err := load(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if d.servers[0] != ours {
		t.Fatalf("servers %v: ours is not first", d.servers)
	}
	var b bytes.Buffer
	d.table(&b, metrics[0])
	out := b.String()
	for _, want := range []string{"| **hioload-ws** | 1.00 (0.50×) !1 failed |", "| gnet | 2.00 (1.00×) |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if n := d.failures(&b); n != 2 {
		t.Fatalf("failures = %d, want 2:\n%s", n, b.String())
	}
}

// TestTargets: ours is the better of our engines per cell, uWebSockets is
// not a Go peer (it sets no ratio), and the targets table says which
// targets are met.
func TestTargets(t *testing.T) {
	const runs = `{"server":"uws","scenario":"64B","server_cpu_us_per_msg":1.0}
{"server":"gnet","scenario":"64B","server_cpu_us_per_msg":0.9}
{"server":"hioload-ws","scenario":"64B","server_cpu_us_per_msg":0.7}
{"server":"hioload-ws-epoll","scenario":"64B","server_cpu_us_per_msg":0.95}
{"server":"gobwas","scenario":"1MiB","server_cpu_us_per_msg":400}
{"server":"uws","scenario":"1MiB","server_cpu_us_per_msg":300}
{"server":"hioload-ws","scenario":"1MiB","server_cpu_us_per_msg":500}
{"server":"hioload-ws-epoll","scenario":"1MiB","server_cpu_us_per_msg":390}
{"server":"uws","scenario":"rate20k","server_cpu_us_per_msg":10,"p99_us":900}
{"server":"gws","scenario":"rate20k","server_cpu_us_per_msg":12,"p99_us":400}
{"server":"hioload-ws","scenario":"rate20k","server_cpu_us_per_msg":9,"p99_us":500}
{"server":"uws","scenario":"idle","bytes_per_conn":272}
{"server":"hioload-ws","scenario":"idle","bytes_per_conn":240}
`
	d, err := load(strings.NewReader(runs))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.servers, ","); got != "hioload-ws,hioload-ws-epoll,uws,gnet,gobwas,gws" {
		t.Fatalf("server order %s", got)
	}
	var b bytes.Buffer
	d.table(&b, metrics[0])
	if !strings.Contains(b.String(), "| uws | 1.00 (1.11×) |") {
		t.Errorf("uws is not measured against the best Go peer (gnet):\n%s", b.String())
	}
	b.Reset()
	d.targetTable(&b)
	out := b.String()
	for _, want := range []string{
		"| 64B | server CPU µs/msg | hioload-ws 0.700 | uws 1.00 | 0.70× | ≤ 0.8× uws | yes |",
		"| 1MiB | server CPU µs/msg | hioload-ws-epoll 390 | gobwas 400 | 0.97× | ≤ 1× gobwas | yes |",
		"| rate20k | server CPU µs/msg | hioload-ws 9.00 | uws 10.0 | 0.90× | ≤ 0.8× uws | **no** |",
		"| rate20k | p99 µs | hioload-ws 500 | gws 400 | 1.25× | ≤ 1× best Go peer | **no** |",
		"| idle | RSS B/conn | hioload-ws 240 | uws 272 | 0.88× | ≤ 250 B | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("targets lack %q:\n%s", want, out)
		}
	}
}
