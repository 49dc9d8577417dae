//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a running echo process and the log lines it has written.
type server struct {
	cmd   *exec.Cmd
	addr  string // from its "ws: listening" line
	mu    sync.Mutex
	lines []string // stderr (slog text) and stdout, in arrival order
	done  chan struct{}
	err   error // Wait's result, once done is closed
}

// startServer runs the echo binary with args and waits until it logs
// "ws: listening" (or exits, or the timeout passes).
func startServer(bin string, timeout time.Duration, args ...string) (*server, error) {
	s := &server{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go s.collect(stderr, &wg)
	go s.collect(stdout, &wg)
	go func() {
		wg.Wait() // pipes drained before Wait closes them
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l, ok := s.find("ws: listening"); ok {
			s.addr = logValue(l, "addr")
			return s, nil
		}
		select {
		case <-s.done:
			return s, fmt.Errorf("%s exited before listening: %v\n%s", bin, s.err, s.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stop(5 * time.Second)
	return s, fmt.Errorf("%s: no \"ws: listening\" line after %v\n%s", bin, timeout, s.log())
}

func (s *server) collect(r io.Reader, wg *sync.WaitGroup) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.mu.Lock()
		s.lines = append(s.lines, sc.Text())
		s.mu.Unlock()
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// find returns the first line whose msg is msg.
func (s *server) find(msg string) (string, bool) {
	l := s.findAll(msg)
	if len(l) == 0 {
		return "", false
	}
	return l[0], true
}

func (s *server) findAll(msg string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if logValue(l, "msg") == msg {
			out = append(out, l)
		}
	}
	return out
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "    | " + strings.Join(s.lines, "\n    | ")
}

// stop sends SIGTERM (graceful shutdown), kills after timeout, and reports
// how the process ended: nil only for a clean exit 0.
func (s *server) stop(timeout time.Duration) error {
	select {
	case <-s.done:
		return s.exitErr()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.exitErr()
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("no exit %v after SIGTERM: killed", timeout)
	}
}

func (s *server) exitErr() error {
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("killed by %v", ws.Signal())
		}
	}
	return s.err
}

// alive reports whether the process is still running (not killed by a
// SIGBUS, say).
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// logValue returns key's value in a log/slog text line
// (key=value or key="quoted value"), "" when absent.
func logValue(line, key string) string {
	rest := line
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		k, v, ok := strings.Cut(rest, "=")
		if !ok || strings.ContainsRune(k, ' ') {
			return ""
		}
		var val string
		if strings.HasPrefix(v, `"`) {
			end := closingQuote(v)
			val, _ = strconv.Unquote(v[:end])
			rest = v[end:]
		} else {
			val, rest, _ = strings.Cut(v, " ")
		}
		if k == key {
			return val
		}
	}
	return ""
}

// closingQuote returns the index just past the quoted string v starts with.
func closingQuote(v string) int {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(v)
}

// setFile writes a sysfs/procfs knob.
func setFile(path, value string) error {
	return os.WriteFile(path, []byte(value), 0o644)
}
