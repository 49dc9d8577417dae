//go:build linux

package main

import (
	"slices"
	"testing"
)

func TestLogValue(t *testing.T) {
	line := `time=2026-11-26T06:20:01.000Z level=INFO msg="ws: buffer pool" node=1 pages=thp bind_err="" ` +
		`placement="move_pages: 64/64 on node 1" fallbacks="hugetlb: none reserved (vm.nr_hugepages is 0; 38 pages of 2 MiB would back this pool)"`
	for _, c := range []struct{ key, want string }{
		{"msg", "ws: buffer pool"},
		{"node", "1"},
		{"pages", "thp"},
		{"bind_err", ""},
		{"placement", "move_pages: 64/64 on node 1"},
		{"fallbacks", "hugetlb: none reserved (vm.nr_hugepages is 0; 38 pages of 2 MiB would back this pool)"},
		{"absent", ""},
	} {
		if got := logValue(line, c.key); got != c.want {
			t.Errorf("logValue(%q) = %q, want %q", c.key, got, c.want)
		}
	}
	if got := logValue(`msg="say \"hi\"" x=1`, "x"); got != "1" {
		t.Errorf("after an escaped quote: x = %q, want 1", got)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"0", []int{0}},
		{"0-1", []int{0, 1}},
		{"0-1,4,6-7", []int{0, 1, 4, 6, 7}},
	} {
		got, err := parseCPUList(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if _, err := parseCPUList("0-x"); err == nil {
		t.Error("parseCPUList(0-x): no error")
	}
}

func TestMappingKindAndNode(t *testing.T) {
	for _, c := range []struct {
		m    mapping
		kind string
		node int
	}{
		{mapping{policy: "bind:1", huge: true, pageKB: 2048}, "hugetlb", 1},
		{mapping{policy: "bind=static:0", anonHuge: 2048, pageKB: 4}, "thp", 0},
		{mapping{policy: "bind:0", pageKB: 4}, "normal", 0},
		{mapping{policy: "default"}, "normal", -1},
	} {
		if k, n := c.m.kind(), c.m.policyNode(); k != c.kind || n != c.node {
			t.Errorf("%+v: kind %s node %d, want %s %d", c.m, k, n, c.kind, c.node)
		}
	}
}

func TestFailureOutput(t *testing.T) {
	out := "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n    b_test.go:9: boom\n--- FAIL: TestB (0.01s)\nFAIL\n"
	got := failureOutput(out, []string{"TestB"})
	want := []string{"=== RUN   TestB", "    b_test.go:9: boom", "--- FAIL: TestB (0.01s)"}
	if !slices.Equal(got, want) {
		t.Errorf("failureOutput = %q, want %q", got, want)
	}
}
