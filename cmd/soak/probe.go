package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// The probe measures what a good client feels: a 64-byte message every
// 10 ms, each sent when the last came back, its round trip timed; and a new
// connection (dial and upgrade, timed) every 2 s. It runs in a process of
// its own, started before the generator lowers its own priority (renice)
// and, with -probe-cpu, on the server's CPU while the generator runs on
// the others: its times are then the server's, not those of the
// generator's thousands of goroutines and their loopback traffic, which
// the kernel processes on the sending CPU whatever the nice value. It prints one
// line per measurement ("rtt|conn UNIXNANO NANOS") or failure ("dropped",
// "refused", "corrupt") until its standard input closes.

// runProbe is the probe process (soak -probe).
func runProbe() {
	pinTo(*probeCPU)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		mu.Unlock()
	}
	go func() { // flush now and then; exit when the parent closes stdin
		io.Copy(io.Discard, os.Stdin)
		stopGood.Store(true)
	}()
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			mu.Lock()
			out.Flush()
			mu.Unlock()
		}
	}()
	var c *wstest.Client
	var opened time.Time
	msg := bytes.Repeat([]byte("probe-"), 11)[:64]
	for !stopGood.Load() {
		if c == nil || time.Since(opened) > 2*time.Second {
			if c != nil {
				goodbye(c)
				c.Close()
			}
			t0 := time.Now()
			var err error
			if c, err = wstest.DialTimeout(*addr, 10*time.Second); err != nil {
				emit("dropped %v", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			emit("conn %d %d", t0.UnixNano(), time.Since(t0))
			opened = time.Now()
		}
		t0 := time.Now()
		c.Conn().SetDeadline(t0.Add(10 * time.Second))
		_, err := c.Conn().Write(wstest.Text(msg))
		var f wstest.Frame
		if err == nil {
			f, err = c.ReadFrame()
		}
		if err == nil && f.Op == gws.OpClose {
			emit("refused %x", f.Payload)
			err = io.EOF
		}
		if err != nil {
			emit("dropped %v", err)
			c.Close()
			c = nil
			continue
		}
		d := time.Since(t0)
		if f.Op != gws.OpText || !bytes.Equal(f.Payload, msg) {
			emit("corrupt")
		} else {
			emit("rtt %d %d", t0.UnixNano(), d)
		}
		time.Sleep(time.Until(t0.Add(10 * time.Millisecond)))
	}
	if c != nil {
		goodbye(c)
		c.Close()
	}
	mu.Lock()
	out.Flush()
	mu.Unlock()
}

// startProbe starts the probe process and collects what it prints; stop
// ends it and waits for its last lines.
func startProbe() (stop func(), err error) {
	cmd := exec.Command(os.Args[0], "-probe", "-addr", *addr, "-probe-cpu", strconv.Itoa(*probeCPU))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			probeLine(sc.Text())
		}
	}()
	return func() {
		in.Close()
		<-done
		cmd.Wait()
	}, nil
}

// probeLine counts one line of the probe's.
func probeLine(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "rtt", "conn":
		if len(f) != 3 {
			return
		}
		at, err1 := strconv.ParseInt(f[1], 10, 64)
		d, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return
		}
		lat.add(time.Unix(0, at), time.Duration(d), f[0] == "conn")
		if f[0] == "rtt" {
			stats.sent.Add(1)
			echoed()
		}
	case "corrupt":
		stats.sent.Add(1)
		stats.corrupt.Add(1)
	case "refused":
		stats.sent.Add(1)
		stats.refused.Add(1)
		fmt.Println("  probe:", line)
	case "dropped":
		stats.dropped.Add(1)
		fmt.Println("  probe:", line)
	}
}

// latencies keeps the probe's times per window of the run.
type latencies struct {
	mu      sync.Mutex
	rtt     map[string][]time.Duration
	connect map[string][]time.Duration
}

var lat = latencies{rtt: map[string][]time.Duration{}, connect: map[string][]time.Duration{}}

// add records d, measured from at, under the window at falls in.
func (l *latencies) add(at time.Time, d time.Duration, connect bool) {
	w := clock.windowName(at)
	l.mu.Lock()
	defer l.mu.Unlock()
	if connect {
		l.connect[w] = append(l.connect[w], d)
	} else {
		l.rtt[w] = append(l.rtt[w], d)
	}
}
