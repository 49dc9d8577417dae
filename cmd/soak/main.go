// Command soak mixes good WebSocket clients, which verify every echo, with
// hostile ones (slowloris, garbage, oversized frames, invalid UTF-8,
// unmasked frames, resets, clients that never read) against a running echo
// server, and reports: good messages sent, echoed, lost and corrupted; hostile
// clients answered correctly by kind; the server's RSS and open descriptors
// over time; and the good clients' throughput before, during and after the
// hostile phase. It is bounded in time (about -duration, plus however long
// the last hostile client needs to be answered) and exits non-zero when a
// check fails. scripts/soak.sh builds and starts the server and runs it.
//
//	soak -addr 127.0.0.1:9001 -pid 1234 -duration 60s
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

var (
	addr     = flag.String("addr", "127.0.0.1:9001", "echo server address")
	pid      = flag.Int("pid", 0, "server process id, for RSS and descriptor samples (0: not sampled)")
	duration = flag.Duration("duration", 60*time.Second, "run time: a quarter warm-up, half hostile, a quarter recovery")
	good     = flag.Int("good", 32, "good clients")
	hostile  = flag.Int("hostile", 16, "hostile clients at a time during the hostile phase")
	maxQueue = flag.Int("server-max-write-queue", 1<<20, "the server's -max-write-queue, to size the never-reading client")
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
	sent, echoed, corrupt, dropped atomic.Int64
	perPhase                       [phases]atomic.Int64 // echoes per phase
}

var (
	stats    counters
	phase    atomic.Int32
	stopGood atomic.Bool
)

func main() {
	flag.Parse()
	start := time.Now()
	attackAt := start.Add(*duration / 4)
	recoverAt := start.Add(*duration * 3 / 4)
	fmt.Printf("soak: %s against %s: %d good clients, %d hostile at a time in [%s, %s]\n",
		*duration, *addr, *good, *hostile, attackAt.Sub(start).Round(time.Second), recoverAt.Sub(start).Round(time.Second))

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
				if phase.Load() == warmup && now.After(attackAt) {
					phase.Store(attack)
				}
				s := takeSample(now.Sub(start))
				sampleMu.Lock()
				samples = append(samples, s)
				sampleMu.Unlock()
				fmt.Printf("  %5.0fs %-8s echoed %9d  rss %7.1f MiB  fds %5d\n", s.at.Seconds(), phaseNames[s.phase], stats.echoed.Load(), float64(s.rss)/(1<<20), s.fds)
			}
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < *good; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); goodClient(i) }()
	}
	results := newResults()
	var hw sync.WaitGroup
	for i := 0; i < *hostile; i++ {
		hw.Add(1)
		go func() {
			defer hw.Done()
			for k := i; ; k++ {
				now := time.Now()
				if now.Before(attackAt) {
					time.Sleep(attackAt.Sub(now))
					continue
				}
				if now.After(recoverAt) {
					return
				}
				kind := kinds[k%len(kinds)]
				results.add(kind.name, kind.run(*addr))
			}
		}()
	}
	// Recovery starts when the last hostile client is done (a never-reading
	// one may outlast the hostile phase) and lasts a quarter of the run.
	hw.Wait()
	phase.Store(recovery)
	time.Sleep(*duration / 4)
	stopGood.Store(true)
	wg.Wait()
	close(done)
	sampleMu.Lock()
	defer sampleMu.Unlock()
	os.Exit(report(results, samples))
}

// goodClient sends messages of random size and kind, and checks each echo
// byte for byte and in order, until stopGood.
func goodClient(id int) {
	for !stopGood.Load() {
		c, err := wstest.DialTimeout(*addr, 10*time.Second)
		if err != nil {
			stats.dropped.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !converse(c, id) {
			stats.dropped.Add(1)
		}
		c.Close()
	}
}

// converse runs one connection; false if the server dropped it.
func converse(c *wstest.Client, id int) bool {
	nc := c.Conn()
	rng := mrand.New(mrand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	type pending struct {
		op gws.OpCode
		p  []byte
	}
	queue := make(chan pending, 8)
	errc := make(chan error, 1)
	go func() { // reader: verify in order
		for want := range queue {
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			f, err := c.ReadFrame()
			if err != nil {
				errc <- err
				return
			}
			if f.Op != want.op || !f.Fin || !bytes.Equal(f.Payload, want.p) {
				stats.corrupt.Add(1)
			} else {
				stats.echoed.Add(1)
				stats.perPhase[phase.Load()].Add(1)
			}
		}
		errc <- nil
	}()
	ok := true
	for !stopGood.Load() && ok {
		n := 1 + rng.IntN(1<<rng.IntN(17)) // 1 B .. 64 KiB, skewed small
		p := make([]byte, n)
		op := gws.OpBinary
		if rng.IntN(2) == 0 {
			op = gws.OpText
			for i := range p {
				p[i] = 'a' + byte(rng.IntN(26))
			}
		} else {
			rand.Read(p)
		}
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(wstest.Data(op, true, p)); err != nil {
			ok = false
			break
		}
		stats.sent.Add(1)
		select {
		case queue <- pending{op, p}:
		case err := <-errc:
			_ = err
			ok = false
		}
	}
	close(queue)
	if err := <-errc; err != nil {
		ok = false
	}
	if ok {
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write(wstest.Close(1000, ""))
		c.ReadFrame()
	}
	return ok
}

// A hostile kind: what it does, and whether the server answered right.
type kind struct {
	name string
	run  func(addr string) error // nil: answered correctly
}

var kinds = []kind{
	{"slowloris handshake", slowloris},
	{"garbage bytes", garbage},
	{"wrong version (426)", wrongVersion},
	{"oversized frame (1009)", expectClose(1009, func() []byte {
		return wstest.Frame{Fin: true, Op: gws.OpBinary, RawLen: true, Length: 1 << 32}.Bytes() // 4 GiB announced
	})},
	{"invalid UTF-8 (1007)", expectClose(1007, func() []byte { return wstest.Text([]byte("ok\xed\xa0\x80")) })},
	{"unmasked frame (1002)", expectClose(1002, func() []byte {
		return wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: []byte("no mask"), Unmasked: true}.Bytes()
	})},
	{"reserved opcode (1002)", expectClose(1002, func() []byte { return wstest.Data(3, true, nil) })},
	{"reset mid-frame", resetMidFrame},
	{"never reads (1008)", neverReads},
}

func slowloris(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte{req[i%len(req)]}); err != nil {
			return nil // dropped by the server: answered
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			return nil // EOF or reset: answered
		}
	}
	return errors.New("a handshake trickling for 30 s was never dropped")
}

func garbage(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	b := make([]byte, 600)
	rand.Read(b)
	copy(b[len(b)-4:], "\r\n\r\n")
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil && resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return nil
	}
	if err != nil && !isTimeout(err) {
		return nil // closed without a response: also an answer to garbage
	}
	return fmt.Errorf("garbage got %v %v", resp, err)
}

func wrongVersion(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, strings.Replace(wstest.Request(addr, wstest.NewKey()), "Version: 13", "Version: 8", 1))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != 426 || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		return fmt.Errorf("wrong version got %d %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Version"))
	}
	return nil
}

func expectClose(code int, payload func() []byte) func(string) error {
	return func(addr string) error {
		c, err := wstest.DialTimeout(addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.Conn().SetDeadline(time.Now().Add(5 * time.Second))
		c.Conn().Write(payload())
		f, err := c.ReadFrame()
		if err != nil {
			return fmt.Errorf("no close frame: %w", err)
		}
		if p := f.Payload; f.Op != gws.OpClose || len(p) < 2 || int(binary.BigEndian.Uint16(p)) != code {
			return fmt.Errorf("got %v, want close %d", f, code)
		}
		return nil
	}
}

func resetMidFrame(addr string) error {
	c, err := wstest.DialTimeout(addr, 10*time.Second)
	if err != nil {
		return err
	}
	f := wstest.Binary(make([]byte, 10000))
	c.Conn().Write(f[:5000])
	c.Conn().(*net.TCPConn).SetLinger(0)
	return c.Close() // nothing to expect: the server must simply survive it
}

// neverReads floods echoes it never reads until the server gives up on it
// (1008 then close), within a bound.
func neverReads(addr string) error {
	c, err := wstest.DialTimeout(addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	nc := c.Conn()
	nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	msg := wstest.Binary(make([]byte, 64<<10))
	limit := 64 * (*maxQueue + (16 << 20)) / (64 << 10) // far more than queue + socket buffers
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < limit && time.Now().Before(deadline); i++ {
		nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(msg); err != nil {
			break // the server stopped reading us: it has given up
		}
	}
	// Now read: echoes, then the 1008, or the connection gone (cut after
	// the linger timeout because we did not read in time).
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		f, err := c.ReadFrame()
		if err != nil {
			if isTimeout(err) {
				return errors.New("the server kept a client that never reads")
			}
			return nil // cut: answered
		}
		if p := f.Payload; f.Op == gws.OpClose {
			if len(p) >= 2 && binary.BigEndian.Uint16(p) == 1008 {
				return nil
			}
			return fmt.Errorf("closed with %q, want 1008", p)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// results counts hostile clients answered right and wrong, by kind.
type results struct {
	mu   sync.Mutex
	ok   map[string]int
	bad  map[string]int
	last map[string]error
}

func newResults() *results {
	return &results{ok: map[string]int{}, bad: map[string]int{}, last: map[string]error{}}
}

func (r *results) add(kind string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad[kind]++
		r.last[kind] = err
		return
	}
	r.ok[kind]++
}

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
func report(r *results, samples []sample) int {
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
	fmt.Printf("\ngood clients: %d messages sent, %d echoed byte-exact, %d corrupted, %d lost, %d connections dropped\n",
		sent, echoed, stats.corrupt.Load(), sent-echoed-stats.corrupt.Load(), stats.dropped.Load())
	check(stats.corrupt.Load() == 0, "no good message corrupted (%d)", stats.corrupt.Load())
	check(sent == echoed, "no good message lost (%d sent, %d echoed)", sent, echoed)
	check(stats.dropped.Load() == 0, "no good connection dropped (%d)", stats.dropped.Load())
	fmt.Println("\nhostile clients, by kind:")
	for _, k := range kinds {
		fmt.Printf("  %-26s answered right %5d, wrong %d", k.name, r.ok[k.name], r.bad[k.name])
		if err := r.last[k.name]; err != nil {
			fmt.Printf(" (last: %v)", err)
		}
		fmt.Println()
	}
	for _, k := range kinds {
		check(r.bad[k.name] == 0 && r.ok[k.name] > 0, "every %s answered right", k.name)
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
		var endAttack, endRecovery, warm sample
		for _, s := range samples {
			switch s.phase {
			case warmup:
				warm = s
			case attack:
				endAttack = s
			case recovery:
				endRecovery = s
			}
		}
		fmt.Printf("server: rss %0.1f MiB warm-up, %0.1f MiB end of hostile phase, %0.1f MiB end; fds %d, %d, %d\n",
			mib(warm.rss), mib(endAttack.rss), mib(endRecovery.rss), warm.fds, endAttack.fds, endRecovery.fds)
		check(endRecovery.fds <= warm.fds+4, "descriptors back to the warm-up count after the hostile phase (%d vs %d)", endRecovery.fds, warm.fds)
		check(endRecovery.rss <= endAttack.rss+(16<<20), "RSS flat after the hostile phase (%0.1f MiB vs %0.1f MiB)", mib(endRecovery.rss), mib(endAttack.rss))
	}
	fmt.Printf("\nsoak: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func mib(b int) float64 { return float64(b) / (1 << 20) }
