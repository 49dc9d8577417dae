// Command soak mixes good WebSocket clients, which verify every echo, with
// hostile ones against a running echo server, and reports: good messages
// sent, echoed, refused, lost and corrupted; hostile clients answered
// correctly by kind; the latency of small messages and of new connections
// of a good client next to each attack; the server's RSS and open
// descriptors over time; and how fast its memory came back.
//
// The run has three phases: a quarter warm-up, half hostile, a quarter
// recovery. All through the hostile phase a mix of malformed clients
// (slowloris, garbage, oversized frames, invalid UTF-8, unmasked frames,
// resets, clients that never read) keeps coming; on top of it the hostile
// phase is cut into one window per attack of issue 14 (attacks.go), each
// from its own loopback address:
//
//	reserve      headers announcing large frames, and a few bytes each (point 1)
//	bare-tcp     hundreds of TCP connections that never speak (point 3)
//	never-reads  clients that send 10 MiB and never read (point 4)
//	heavy-echo   clients echoing 16 MiB messages (point 5)
//	pushers      clients pushing 4 MiB each without reading (point 5)
//
// It is bounded in time (about -duration, plus however long the last
// hostile client needs to be answered) and exits non-zero when a check
// fails. scripts/soak.sh builds and starts the server and runs it.
//
//	soak -addr 127.0.0.1:9001 -pid 1234 -duration 60s
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	addr     = flag.String("addr", "127.0.0.1:9001", "echo server address")
	pid      = flag.Int("pid", 0, "server process id, for RSS and descriptor samples (0: not sampled)")
	duration = flag.Duration("duration", 60*time.Second, "run time: a quarter warm-up, half hostile, a quarter recovery")
	good     = flag.Int("good", 32, "good clients")
	hostile  = flag.Int("hostile", 16, "malformed clients at a time during the hostile phase")
	maxQueue = flag.Int("server-max-write-queue", 32<<20, "the server's -max-write-queue, to size the never-reading client")
	stall    = flag.Duration("server-write-stall", 10*time.Second, "the server's -write-stall-timeout, the bound for closing clients that stop reading")
	attackNs = flag.String("attacks", strings.Join(attackNames(), ","), "attack windows of the hostile phase, in order")
	rssSlack = flag.Int("rss-slack", 64, "MiB the server's RSS may stay above its warm-up value after the attacks")
	probeRun = flag.Bool("probe", false, "run as the probe process (started by soak itself)")
	metrics  = flag.String("metrics", "", "the server's metrics URL (echo -metrics), to report its counters")
	probeCPU = flag.Int("probe-cpu", -1, "CPU to pin the probe process to (-1: not pinned); scripts/soak.sh puts it next to the server, away from the generator")
)

// phase of the run, for throughput and samples.
const (
	warmup = iota
	attack
	recovery
	phases
)

var phaseNames = [phases]string{"warm-up", "hostile", "recovery"}

type counters struct {
	sent, echoed, corrupt, dropped, refused atomic.Int64
	perPhase                                [phases]atomic.Int64 // echoes per phase
}

var (
	stats    counters
	phase    atomic.Int32
	stopGood atomic.Bool
	clock    *timeline
)

func main() {
	flag.Parse()
	if *probeRun {
		runProbe()
		return
	}
	attacks, err := pickAttacks(*attackNs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	clock = newTimeline(time.Now(), *duration, attacks)
	fmt.Printf("soak: %s against %s: %d good clients, %d malformed at a time in [%s, %s], attack windows %s\n",
		*duration, *addr, *good, *hostile, clock.since(clock.attackAt), clock.since(clock.recoverAt), clock.describe())

	var samples []sample
	var sampleMu sync.Mutex
	done := make(chan struct{})
	go func() { // phase clock and samples, once a second
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if phase.Load() == warmup && now.After(clock.attackAt) {
					phase.Store(attack)
				}
				s := takeSample(now.Sub(clock.start))
				sampleMu.Lock()
				samples = append(samples, s)
				sampleMu.Unlock()
				fmt.Printf("  %5.0fs %-12s echoed %9d  rss %7.1f MiB  fds %5d\n", s.at.Seconds(), clock.windowName(now), stats.echoed.Load(), mib(s.rss), s.fds)
			}
		}
	}()

	stopProbe, err := startProbe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: probe:", err)
		os.Exit(2)
	}
	renice()
	var wg sync.WaitGroup
	for i := 0; i < *good; i++ {
		wg.Go(func() { goodClient(i) })
	}
	for i := range 2 {
		wg.Go(func() { bigClient(i) })
	}
	results := newResults()
	var hw sync.WaitGroup
	for i := 0; i < *hostile; i++ {
		hw.Go(func() {
			for k := i; ; k++ {
				now := time.Now()
				if now.Before(clock.attackAt) {
					time.Sleep(clock.attackAt.Sub(now))
					continue
				}
				if now.After(clock.recoverAt) {
					return
				}
				kind := kinds[k%len(kinds)]
				results.add(kind.name, kind.run(*addr))
			}
		})
	}
	for i, a := range attacks {
		hw.Go(func() {
			from, to := clock.window(i)
			time.Sleep(time.Until(from))
			results.add(a.name, a.run(*addr, a.local, to))
		})
	}
	// Recovery starts when the last hostile client is done (one that never
	// reads may outlast the hostile phase) and lasts a quarter of the run.
	hw.Wait()
	phase.Store(recovery)
	clock.recovered(time.Now())
	time.Sleep(*duration / 4)
	stopGood.Store(true)
	wg.Wait()
	stopProbe()
	close(done)
	sampleMu.Lock()
	defer sampleMu.Unlock()
	os.Exit(report(results, attacks, samples))
}

// timeline places the phases and the attack windows.
type timeline struct {
	start, attackAt, recoverAt time.Time
	windows                    []string
	mu                         sync.Mutex
	recoveredAt                time.Time // when the last hostile client finished
}

func newTimeline(start time.Time, d time.Duration, attacks []attackKind) *timeline {
	t := &timeline{start: start, attackAt: start.Add(d / 4), recoverAt: start.Add(d * 3 / 4)}
	for _, a := range attacks {
		t.windows = append(t.windows, a.name)
	}
	return t
}

// window returns the span of attack window i: the hostile phase cut in
// equal parts.
func (t *timeline) window(i int) (time.Time, time.Time) {
	w := t.recoverAt.Sub(t.attackAt) / time.Duration(len(t.windows))
	from := t.attackAt.Add(time.Duration(i) * w)
	return from, from.Add(w)
}

// windowName names what runs at now: "warm-up", an attack, "recovery".
func (t *timeline) windowName(now time.Time) string {
	t.mu.Lock()
	rec := t.recoveredAt
	t.mu.Unlock()
	switch {
	case now.Before(t.attackAt):
		return "warm-up"
	case !rec.IsZero() && !now.Before(rec):
		return "recovery"
	case !now.Before(t.recoverAt):
		return "draining" // the last hostile clients are being answered
	}
	for i, name := range t.windows {
		if _, to := t.window(i); now.Before(to) {
			return name
		}
	}
	return "draining"
}

func (t *timeline) recovered(at time.Time) {
	t.mu.Lock()
	t.recoveredAt = at
	t.mu.Unlock()
}

func (t *timeline) since(at time.Time) time.Duration { return at.Sub(t.start).Round(time.Second) }

func (t *timeline) describe() string {
	var b strings.Builder
	for i, name := range t.windows {
		from, to := t.window(i)
		fmt.Fprintf(&b, " %s [%s, %s]", name, t.since(from), t.since(to))
	}
	return b.String()
}
