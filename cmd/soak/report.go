package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

type sample struct {
	at       time.Duration
	phase    int
	rss, fds int
}

func takeSample(at time.Duration) sample {
	s := sample{at: at, phase: int(phase.Load())}
	if *pid == 0 {
		return s
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				s.rss = kb << 10
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", *pid)); err == nil {
		s.fds = len(ents)
	}
	return s
}

// report prints the findings and returns the exit code.
func report(r *results, attacks []attackKind, samples []sample) int {
	passed, failed := 0, 0
	check := func(ok bool, format string, args ...any) {
		status := "PASS"
		if ok {
			passed++
		} else {
			failed++
			status = "FAIL"
		}
		fmt.Printf("%s %s\n", status, fmt.Sprintf(format, args...))
	}
	sent, echoed := stats.sent.Load(), stats.echoed.Load()
	fmt.Printf("\ngood clients: %d messages sent, %d echoed byte-exact, %d refused (1013), %d corrupted, %d lost, %d connections dropped\n",
		sent, echoed, stats.refused.Load(), stats.corrupt.Load(), sent-echoed-stats.corrupt.Load(), stats.dropped.Load())
	check(stats.corrupt.Load() == 0, "no good message corrupted (%d)", stats.corrupt.Load())
	check(stats.refused.Load() == 0, "no good message refused (%d)", stats.refused.Load())
	check(sent == echoed, "no good message lost (%d sent, %d echoed)", sent, echoed)
	check(stats.dropped.Load() == 0, "no good connection dropped (%d)", stats.dropped.Load())

	fmt.Println("\nthe probe (64-byte messages one at a time, a new connection every 2 s), by window:")
	fmt.Printf("  %-12s %6s %9s %9s %9s   %6s %9s %9s\n", "window", "msgs", "p50", "p99", "max", "conns", "p99", "max")
	worst := time.Duration(0)
	windows := append(append([]string{"warm-up"}, clock.windows...), "draining", "recovery")
	lat.mu.Lock()
	for _, w := range windows {
		n, p50, p99, mx := quantiles(lat.rtt[w])
		cn, _, cp99, cmx := quantiles(lat.connect[w])
		if n == 0 && cn == 0 {
			continue
		}
		fmt.Printf("  %-12s %6d %9s %9s %9s   %6d %9s %9s\n", w, n, ms(p50), ms(p99), ms(mx), cn, ms(cp99), ms(cmx))
		worst = max(worst, p99)
	}
	lat.mu.Unlock()
	// A loose bound: the generator shares the CPUs with the server (and on
	// a shared machine with whatever else runs), so the figures above are
	// for reading, not asserting; a loop held for a second by a neighbour,
	// as before issue 14, is caught.
	check(worst < time.Second, "small messages never wait a second under any attack (worst window p99 %s)", ms(worst))

	fmt.Println("\nhostile clients, by kind:")
	var names []string
	for _, k := range kinds {
		names = append(names, k.name)
	}
	for _, a := range attacks {
		names = append(names, a.name)
	}
	for _, name := range names {
		fmt.Printf("  %-26s answered right %5d, wrong %d", name, r.ok[name], r.bad[name])
		if err := r.last[name]; err != nil {
			fmt.Printf(" (last: %v)", err)
		}
		fmt.Println()
	}
	for _, name := range names {
		check(r.bad[name] == 0 && r.ok[name] > 0, "every %s answered right", name)
	}
	var rate [phases]float64
	var secs [phases]float64
	for _, s := range samples {
		secs[s.phase]++
	}
	for p := range rate {
		if secs[p] > 0 {
			rate[p] = float64(stats.perPhase[p].Load()) / secs[p]
		}
	}
	fmt.Printf("\ngood echoes per second: warm-up %.0f, hostile %.0f, recovery %.0f\n", rate[warmup], rate[attack], rate[recovery])
	// The generator shares the machine with the server, so the figures are
	// noisy: the check catches a server left degraded (a spinning loop, a
	// leak), not a few percent.
	check(rate[recovery] >= 0.5*rate[warmup], "good clients served at speed after the hostile phase (recovery %.0f/s = %.0f%% of warm-up %.0f/s)", rate[recovery], 100*rate[recovery]/rate[warmup], rate[warmup])
	if *pid != 0 && len(samples) > 4 {
		reportMemory(samples, check)
	}
	reportServer(*metrics)
	fmt.Printf("\nsoak: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// reportMemory checks that the server's descriptors came back and its RSS
// came back within -rss-slack MiB of the warm-up value, and says how soon.
func reportMemory(samples []sample, check func(bool, string, ...any)) {
	var warm, peak, end sample
	var back time.Duration = -1
	slack := *rssSlack << 20
	for _, s := range samples {
		switch s.phase {
		case warmup:
			warm = s
		case attack:
			if s.rss > peak.rss {
				peak = s
			}
		case recovery:
			end = s
			if back < 0 && s.rss <= warm.rss+slack {
				back = s.at - clock.since(clock.recoveredAt)
			}
		}
	}
	fmt.Printf("server: rss %0.1f MiB warm-up, %0.1f MiB peak under attack, %0.1f MiB end; fds %d, %d, %d\n",
		mib(warm.rss), mib(peak.rss), mib(end.rss), warm.fds, peak.fds, end.fds)
	check(end.fds <= warm.fds+4, "descriptors back to the warm-up count after the hostile phase (%d vs %d)", end.fds, warm.fds)
	check(end.rss <= warm.rss+slack, "RSS back within %d MiB of warm-up after the attacks (%0.1f MiB vs %0.1f MiB; within %s of the last hostile client)",
		*rssSlack, mib(end.rss), mib(warm.rss), max(back, 0))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

func mib(b int) float64 { return float64(b) / (1 << 20) }
