package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// stdio is where a test sends echo's stdout and stderr: a pipe of 4 KiB
// that the test may stop reading (a stalled journald, Docker's blocking
// log mode) or close (a vanished log reader).
type stdio struct {
	out, err         *os.File // the read ends
	outW, errW       *os.File // the write ends, the child's
	stdout           *bufio.Reader
	firstLine, mLine string
}

func newStdio(t *testing.T) *stdio {
	t.Helper()
	s := &stdio{}
	var err error
	s.out, s.outW, err = os.Pipe()
	require.NoError(t, err)
	s.err, s.errW, err = os.Pipe()
	require.NoError(t, err)
	for _, f := range []*os.File{s.outW, s.errW} {
		_, err := unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 4096)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, f := range []*os.File{s.out, s.err, s.outW, s.errW} {
			f.Close()
		}
	})
	s.stdout = bufio.NewReader(s.out)
	return s
}

// startPiped runs echo with its stdout and stderr on io's pipes and reads
// its first stdout lines (the listen address, and the metrics address when
// -metrics is among args).
func startPiped(t *testing.T, io *stdio, args ...string) *exec.Cmd {
	t.Helper()
	bin := buildEcho(t)
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-stats", "0"}, args...)...)
	cmd.Stdout, cmd.Stderr = io.outW, io.errW
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	io.outW.Close()
	io.errW.Close()
	lines := make(chan string, 2)
	go func() {
		for range 2 {
			line, _ := io.stdout.ReadString('\n')
			lines <- strings.TrimSpace(line)
		}
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(20 * time.Second):
			t.Fatal("echo printed no line")
		}
		return ""
	}
	io.firstLine = next()
	addr, ok := strings.CutPrefix(io.firstLine, "echo: listening on ")
	require.True(t, ok, "unexpected first line %q", io.firstLine)
	io.firstLine = addr
	for _, a := range args {
		if a == "-metrics" {
			io.mLine = next()
		}
	}
	return cmd
}

// serveClients runs n clients one after the other, each a handshake, an echo and
// a close, every step bounded (wstest.Timeout): a server stuck in a log
// write fails here.
func serveClients(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		c, err := wstest.DialTimeout(addr, 5*time.Second)
		require.NoError(t, err, "client %d: the server stopped answering", i)
		c.Write(t, wstest.Text([]byte("hello")))
		c.ExpectMessage(t, 1, []byte("hello"))
		c.Close()
	}
}

// terminate sends SIGTERM and expects echo to exit 0 within 10 s.
func terminate(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "echo must exit 0 after SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("echo did not finish its shutdown after SIGTERM")
	}
}

// TestStderrNobodyReads is issue #14's point 2: with stderr on a pipe
// nobody reads, the server once hung after a few hundred connections (a
// loop thread in write(2), the others on the logger's lock) and SIGTERM
// could not finish. The log now goes through a bounded, non-blocking sink:
// every client is served, the lines that did not fit are counted, and
// SIGTERM ends the process.
func TestStderrNobodyReads(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			io := newStdio(t)
			cmd := startPiped(t, io, "-workers", "2", "-log-level", level, "-metrics", "127.0.0.1:0")
			// At info level the server used to stop within 20 clients; at
			// debug, 1000 clients log more than the pipe and the sink hold.
			n := 300
			if level == "debug" {
				n = 1000
			}
			serveClients(t, io.firstLine, n)
			if level == "debug" {
				url, ok := strings.CutPrefix(io.mLine, "echo: metrics on ")
				require.True(t, ok, "unexpected line %q", io.mLine)
				require.Positive(t, gauge(t, url, "hioload_log_dropped_lines_total"))
			}
			terminate(t, cmd)
		})
	}
}

// TestStderrReaderGone: a vanished log reader (the read end closed) once
// killed the process with SIGPIPE at its first log line.
func TestStderrReaderGone(t *testing.T) {
	io := newStdio(t)
	io.err.Close()
	cmd := startPiped(t, io, "-workers", "1", "-log-level", "debug")
	serveClients(t, io.firstLine, 20)
	terminate(t, cmd)
}

// TestStdoutNobodyReads: the stats line and the shutdown messages go to
// stdout; with stdout on a pipe nobody reads, SIGTERM must still finish.
func TestStdoutNobodyReads(t *testing.T) {
	io := newStdio(t)
	cmd := startPiped(t, io, "-workers", "1", "-stats", "1ms")
	time.Sleep(300 * time.Millisecond) // up to 300 stats lines: the pipe is full
	serveClients(t, io.firstLine, 5)
	terminate(t, cmd)
}
