//go:build linux

// Command numacheck proves the echo server's NUMA behaviour on a machine
// with two or more NUMA nodes. scripts/numa-vm.sh builds it, packs it into
// the initramfs of a 2-node qemu guest and runs it there as root; it can run
// on any multi-node Linux machine the same way.
//
// It compares `echo -topology -json` with /sys/devices/system/node, starts
// `echo -numa=1` and `-numa=auto` and reads their loop threads' CPU masks
// from /proc/PID/task and their pool memory from /proc/PID/numa_maps and
// smaps, talks WebSocket to them, reserves huge pages on one node only to
// spring the SIGBUS trap on the other, and runs the hugepage and ws test
// binaries. Each check prints one PASS or FAIL line followed by the figures
// it measured, and the last line is "N passed, N failed"; the exit status is
// 1 when a check failed.
//
//	numacheck -echo /bin/echo-cgo,/bin/echo-nocgo -hugepage-test /bin/hugepage.test \
//	    -ws-test /bin/ws.test -ws-run 'Pool|Pinned|ZeroCopy'
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.echo, "echo", "", "comma-separated echo binaries; all get the topology and placement checks, the first the huge-page check")
	flag.StringVar(&o.hugepageTest, "hugepage-test", "", "hugepage test binary (go test -c ./hugepage)")
	flag.StringVar(&o.hugepageRun, "hugepage-run", "", "-test.run pattern for it")
	flag.StringVar(&o.wsTest, "ws-test", "", "ws test binary (go test -c ./ws)")
	flag.StringVar(&o.wsRun, "ws-run", "", "-test.run pattern for it")
	flag.StringVar(&o.wsSkip, "ws-skip", "", "-test.skip pattern for it")
	flag.StringVar(&o.hugepageSkip, "hugepage-skip", "", "-test.skip pattern for the hugepage tests")
	flag.StringVar(&o.wantCPUs, "want-cpus", "0-1;2-3", "each node's CPUs as the guest was booted (';' between nodes; empty: do not check)")
	flag.StringVar(&o.wantDist, "want-dist", "10,21;21,10", "the distance matrix as the guest was booted")
	flag.IntVar(&o.hugePages, "hugepages", 64, "2 MiB pages to reserve on the last node for the huge-page check")
	flag.DurationVar(&o.testTimeout, "test-timeout", 200*time.Second, "-test.timeout for each test binary")
	flag.DurationVar(&o.start, "start-timeout", 60*time.Second, "how long a server may take to start listening")
	flag.Parse()
	if o.echo == "" {
		fmt.Fprintln(os.Stderr, "numacheck: -echo is required")
		os.Exit(2)
	}
	r := &report{}
	run(r, &o)
	fmt.Printf("%d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		os.Exit(1)
	}
}

type options struct {
	echo                 string
	hugepageTest, wsTest string
	hugepageRun, wsRun   string
	hugepageSkip, wsSkip string
	wantCPUs, wantDist   string
	hugePages            int
	start, testTimeout   time.Duration
}

func run(r *report, o *options) {
	m, err := readMachine()
	if err != nil {
		r.fail("guest topology", err)
		return
	}
	r.result("guest: the kernel sees the nodes qemu was asked for", checkGuest(m, o), guestFigures(m)...)
	if len(m.nodes) < 2 {
		return // nothing below means anything on one node
	}
	echos := strings.Split(o.echo, ",")
	for _, bin := range echos {
		checkTopology(r, m, bin)
	}
	last := m.nodes[len(m.nodes)-1]
	for _, bin := range echos {
		checkOneNode(r, m, bin, last, o.start)
		checkAuto(r, m, bin, o.start)
	}
	checkHugePages(r, m, echos[0], o)
	if o.hugepageTest != "" {
		runTests(r, "hugepage tests", o.hugepageTest, o.hugepageRun, o.hugepageSkip, o.testTimeout)
	}
	if o.wsTest != "" {
		runTests(r, "ws tests", o.wsTest, o.wsRun, o.wsSkip, o.testTimeout)
	}
}

// report prints PASS/FAIL lines and counts them.
type report struct{ passed, failed int }

func (r *report) result(name string, err error, figures ...string) {
	if err != nil {
		r.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
	} else {
		r.passed++
		fmt.Printf("PASS %s\n", name)
	}
	for _, f := range figures {
		fmt.Printf("       %s\n", f)
	}
}

func (r *report) fail(name string, err error, figures ...string) { r.result(name, err, figures...) }

// label names an echo binary in check names: "echo-cgo".
func label(bin string) string { return filepath.Base(bin) }

// runTests runs a test binary with -test.v and reports its top-level
// results; the whole output is printed only when it fails.
func runTests(r *report, name, bin, run, skip string, timeout time.Duration) {
	args := []string{"-test.v", "-test.count=1", "-test.short", "-test.timeout=" + timeout.String()}
	if run != "" {
		args = append(args, "-test.run", run)
		name += " -test.run '" + run + "'"
	}
	if skip != "" {
		args = append(args, "-test.skip", skip)
		name += " -test.skip '" + skip + "'"
	}
	t0 := time.Now()
	cmd := exec.Command(bin, args...)
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	var pass, skipped, fail []string
	type timed struct {
		name string
		d    time.Duration
	}
	var took []timed
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "--- ") || len(f) < 3 { // top level only: subtests are indented
			continue
		}
		if len(f) >= 4 {
			if d, err := time.ParseDuration(strings.Trim(f[3], "()")); err == nil {
				took = append(took, timed{f[2], d})
			}
		}
		switch f[1] {
		case "PASS:":
			pass = append(pass, f[2])
		case "SKIP:":
			skipped = append(skipped, f[2])
		case "FAIL:":
			fail = append(fail, f[2])
		}
	}
	figures := []string{fmt.Sprintf("%d passed, %d skipped, %d failed in %.1fs", len(pass), len(skipped), len(fail), time.Since(t0).Seconds())}
	sort.Slice(took, func(i, j int) bool { return took[i].d > took[j].d })
	var slow []string
	for _, t := range took[:min(len(took), 6)] {
		slow = append(slow, fmt.Sprintf("%s %.1fs,", t.name, t.d.Seconds()))
	}
	figures = append(figures, wrap("slowest: ", slow)...)
	figures = append(figures, wrap("passed: ", pass)...)
	figures = append(figures, wrap("skipped: ", skipped)...)
	if err == nil && len(pass) == 0 {
		err = fmt.Errorf("no test ran")
	}
	if err != nil {
		figures = append(figures, "failed: "+strings.Join(fail, " "))
		for _, l := range failureOutput(string(out), fail) {
			figures = append(figures, "| "+l)
		}
	}
	r.result(name, err, figures...)
}

// failureOutput picks from a -test.v output the first 25 lines of a panic
// (the -test.timeout panic lists the tests still running) and the lines of
// each failed top-level test (from its "=== RUN" to its "--- FAIL", at most
// 80 lines each, the last ones kept); with neither, the last 60 lines.
func failureOutput(out string, failed []string) []string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	tail := func(l []string, n int) []string {
		if len(l) > n {
			return append([]string{fmt.Sprintf("... %d lines left out", len(l)-n)}, l[len(l)-n:]...)
		}
		return l
	}
	var picked []string
	for i, l := range lines { // a panic (the -test.timeout one names the running tests)
		if strings.HasPrefix(l, "panic: ") {
			picked = append(picked, lines[i:min(len(lines), i+25)]...)
			break
		}
	}
	if len(failed) == 0 && len(picked) == 0 {
		return tail(lines, 60)
	}
	for _, name := range failed {
		start := -1
		for i, l := range lines {
			if l == "=== RUN   "+name {
				start = i
			}
			if start >= 0 && strings.HasPrefix(l, "--- FAIL: "+name+" ") {
				picked = append(picked, tail(lines[start:i+1], 80)...)
				break
			}
		}
	}
	return picked
}

// wrap lists words after prefix in lines of about 100 characters.
func wrap(prefix string, words []string) []string {
	var out []string
	line := prefix
	for i, w := range words {
		if i > 0 && len(line)+len(w) > 100 {
			out = append(out, strings.TrimRight(line, " "))
			line = strings.Repeat(" ", len(prefix))
		}
		line += w + " "
	}
	if len(words) > 0 {
		out = append(out, strings.TrimRight(line, " "))
	}
	return out
}
