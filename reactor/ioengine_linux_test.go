//go:build !noreactor

package reactor

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// syncBuffer is a log sink safe for the loops' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAutoFallsBackToEpoll forces the io_uring probe to fail: auto then
// runs epoll and logs one line saying why, an explicit uring is an error,
// and the server still serves.
func TestAutoFallsBackToEpoll(t *testing.T) {
	t.Setenv(EngineEnv, "")
	old := probeURing
	probeURing = func() error { return errors.New("io_uring: test: probe forced to fail") }
	t.Cleanup(func() { probeURing = old })

	var log syncBuffer
	h := newEchoHandler()
	e := startEngine(t, h, 1, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	if e.IOEngine() != IOEpoll || e.Loops()[0].Stats().IOEngine != IOEpoll {
		t.Fatalf("engine %s, loop stats %s; want epoll", e.IOEngine(), e.Loops()[0].Stats().IOEngine)
	}
	lines := strings.Count(log.String(), "io engine fallback")
	if lines != 1 || !strings.Contains(log.String(), "probe forced to fail") {
		t.Fatalf("want one fallback line with the reason, got:\n%s", log.String())
	}
	roundTrip(t, dialEngine(t, e), []byte("served by epoll"))

	if _, err := New(Config{Addr: "127.0.0.1:0", IOEngine: IOURing}, h); err == nil || !strings.Contains(err.Error(), "probe forced to fail") {
		t.Fatalf("New with uring forced and no io_uring: %v; want the probe's error", err)
	}
	if got, why, err := ChooseIOEngine(IOAuto); got != IOEpoll || why == "" || err != nil {
		t.Fatalf("ChooseIOEngine(auto) = %s, %q, %v", got, why, err)
	}
}

// TestEngineEnv: HIOLOAD_ENGINE overrides auto, not an explicit choice,
// and a bad value is an error.
func TestEngineEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		give IOEngine
		got  IOEngine
		err  bool
	}{
		{env: "epoll", give: IOAuto, got: IOEpoll},
		{env: "epoll", give: "", got: IOEpoll},
		{env: "epoll", give: IOURing, got: IOURing},
		{env: "uring", give: IOEpoll, got: IOEpoll},
		{env: "kqueue", give: IOAuto, err: true},
		{env: "", give: "select", err: true},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.env, tc.give), func(t *testing.T) {
			t.Setenv(EngineEnv, tc.env)
			if tc.got == IOURing && probeURing() != nil {
				t.Skipf("no io_uring here: %v", probeURing())
			}
			got, _, err := ChooseIOEngine(tc.give)
			if (err != nil) != tc.err || !tc.err && got != tc.got {
				t.Fatalf("ChooseIOEngine(%q) with %s=%q: %s, %v", tc.give, EngineEnv, tc.env, got, err)
			}
		})
	}
}

// TestAutoIsURing: auto probes the kernel and takes io_uring where it has
// what the engine needs (the machines we run on: Linux 6.12 or later,
// io_uring_disabled=0); where it lacks it, auto is epoll with the reason
// (TestAutoFallsBackToEpoll forces that half everywhere), and the test
// says so and skips.
func TestAutoIsURing(t *testing.T) {
	t.Setenv(EngineEnv, "")
	probed := false
	old := probeURing
	probeURing = func() error { probed = true; return old() }
	t.Cleanup(func() { probeURing = old })
	got, why, err := ChooseIOEngine(IOAuto)
	if err != nil || !probed {
		t.Fatalf("ChooseIOEngine(auto) = %s, %q, %v (probed %v); want a probe and no error", got, why, err, probed)
	}
	if got != IOURing {
		if got != IOEpoll || why == "" {
			t.Fatalf("ChooseIOEngine(auto) = %s, %q: a fallback must be epoll and say why", got, why)
		}
		t.Skipf("auto chose epoll here: %s", why)
	}
	if why != "" {
		t.Fatalf("ChooseIOEngine(auto) = io_uring with a reason %q: nothing was given up", why)
	}
}

// TestURingRefusedBySeccomp runs a child process whose seccomp filter
// refuses io_uring_setup, as Docker's default profile does: auto must fall
// back to epoll, name the likely cause, and serve.
func TestURingRefusedBySeccomp(t *testing.T) {
	if os.Getenv("REACTOR_SECCOMP_CHILD") == "1" {
		seccompChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestURingRefusedBySeccomp$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REACTOR_SECCOMP_CHILD=1", EngineEnv+"=")
	out, err := cmd.CombinedOutput()
	text := string(out)
	if i := strings.Index(text, "SKIP-SECCOMP:"); i >= 0 {
		t.Skip(text[i:])
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, text)
	}
	if !strings.Contains(text, "ENGINE: epoll") || !strings.Contains(text, "EPERM") || !strings.Contains(text, "seccomp") {
		t.Fatalf("child did not fall back with the reason:\n%s", text)
	}
	t.Log(strings.TrimSpace(text[strings.Index(text, "ENGINE:"):]))
}

func seccompChild() {
	if err := testenv.DenySyscalls(unix.SYS_IO_URING_SETUP); err != nil {
		fmt.Println("SKIP-SECCOMP:", err)
		return
	}
	got, why, err := ChooseIOEngine(IOAuto)
	if err != nil {
		fmt.Println("ChooseIOEngine:", err)
		os.Exit(1)
	}
	e, err := New(Config{Addr: "127.0.0.1:0"}, newEchoHandler())
	if err != nil {
		fmt.Println("New:", err)
		os.Exit(1)
	}
	e.closeLoops()
	fmt.Printf("ENGINE: %s (engine %s): %s\n", got, e.IOEngine(), why)
}

// TestShutdownLogsQuietly: serving a connection and shutting down is no
// news, so neither engine logs a warning or an error for it (io_uring
// once logged "completion for an unknown connection" for the cancel of
// its wakeup read, on every shutdown).
func TestShutdownLogsQuietly(t *testing.T) {
	for _, io := range []IOEngine{IOEpoll, IOURing} {
		t.Run(string(io), func(t *testing.T) {
			if err := probeURing(); io == IOURing && err != nil {
				t.Skipf("no io_uring here: %v", err)
			}
			var log syncBuffer
			h := newEchoHandler()
			e := startEngine(t, h, 1, func(c *Config) {
				c.IOEngine = io
				c.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
			})
			c := dialEngine(t, e)
			roundTrip(t, c, []byte("one echo before the shutdown"))
			c.Close()
			h.waitCloses(t, 1)
			awaitShutdown(t, shutdownAsync(e, 5*time.Second), "after one connection")
			if log.String() != "" {
				t.Fatalf("a plain shutdown logged:\n%s", log.String())
			}
		})
	}
}
