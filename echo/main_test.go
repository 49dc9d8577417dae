package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// buildEcho builds the command once per test binary run.
func buildEcho(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the echo server runs on Linux")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "echo-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "echo")
		buildOut, buildErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	require.NoError(t, buildErr, "%s", buildOut)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type server struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bufio.Reader
	stderr *lockedBuffer
}

// lockedBuffer collects a child's stderr (written by exec's copier
// goroutine, read by the test) and echoes it to ours.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	os.Stderr.Write(p)
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the echo binary (with prefix, e.g. taskset) on 127.0.0.1:0 and
// waits for its "listening on" line.
func start(t *testing.T, prefix []string, bin string, args ...string) *server {
	t.Helper()
	argv := append(append(prefix, bin, "-addr", "127.0.0.1:0", "-stats", "0"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(out)
	lines := make(chan string, 1)
	go func() {
		line, _ := r.ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "echo: listening on ")
		require.True(t, ok, "unexpected first line %q", line)
		return &server{cmd: cmd, addr: addr, stdout: r, stderr: stderr}
	case <-time.After(20 * time.Second):
		t.Fatal("echo did not start")
	}
	return nil
}

func TestEchoEndToEnd(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "2")
	c := wstest.Dial(t, s.addr)
	defer c.Close()
	for _, m := range []struct {
		op gws.OpCode
		p  []byte
	}{{gws.OpText, []byte("Hello")}, {gws.OpBinary, []byte{0, 1, 2, 255}}, {gws.OpText, bytes.Repeat([]byte("é"), 40000)}} {
		c.Write(t, wstest.Data(m.op, true, m.p))
		c.ExpectMessage(t, m.op, m.p)
	}

	// SIGTERM: the client gets close 1001, the process prints its goodbye
	// and exits 0.
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	f := c.Next(t)
	require.Equal(t, gws.OpClose, f.Op)
	require.Equal(t, []byte{0x03, 0xe9}, f.Payload[:2], "close 1001")
	c.Conn().Write(wstest.Data(gws.OpClose, true, f.Payload[:2]))
	rest, _ := io.ReadAll(s.stdout)
	require.Contains(t, string(rest), "Server stopped.")
	require.NoError(t, s.cmd.Wait(), "echo must exit 0 after SIGTERM")
}

// threads returns the loop threads of pid: name -> Cpus_allowed_list.
func threads(t *testing.T, pid int) map[string]string {
	t.Helper()
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	require.NoError(t, err)
	got := map[string]string{}
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if !strings.HasPrefix(name, "reactor-") {
			continue
		}
		require.NotEqual(t, fmt.Sprint(pid), filepath.Base(d), "loop %s runs on the main thread", name)
		status, err := os.ReadFile(d + "/status")
		require.NoError(t, err)
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				got[name] = strings.TrimSpace(v)
			}
		}
	}
	return got
}

// TestTasksetOneCPU: under `taskset -c N` the plan has one loop, pinned to
// N, and no loop thread may run anywhere else.
func TestTasksetOneCPU(t *testing.T) {
	bin := buildEcho(t)
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("no taskset")
	}
	cpu := runtime.NumCPU() - 1
	s := start(t, []string{taskset, "-c", fmt.Sprint(cpu)}, bin)
	requireLoops(t, s, map[string]string{"reactor-0": fmt.Sprint(cpu)})
}

// requireLoops waits until s runs as many loop threads as want names and
// then requires each to be allowed exactly its CPU list.
func requireLoops(t *testing.T, s *server, want map[string]string) {
	t.Helper()
	var got map[string]string
	require.Eventually(t, func() bool {
		got = threads(t, s.cmd.Process.Pid)
		return len(got) == len(want)
	}, 10*time.Second, 20*time.Millisecond, "loop threads: %v", got)
	require.Equal(t, want, got)
}

// TestLoopsPinnedAsPlanned: with two loops on a two-CPU machine each loop
// thread is allowed exactly its own CPU.
func TestLoopsPinnedAsPlanned(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "2")
	requireLoops(t, s, map[string]string{"reactor-0": "0", "reactor-1": "1"})
}

// TestEchoCompression: with -compression, echo negotiates permessage-deflate
// with the parameters its flags ask for and echoes compressed messages
// compressed.
func TestEchoCompression(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "1", "-compression", "-compression-context-takeover=false",
		"-compression-window-bits", "12", "-compression-level", "6", "-compression-min-size", "10")
	c := wstest.DialRaw(t, s.addr)
	defer c.Close()
	require.NoError(t, c.HandshakeOffer(s.addr, "permessage-deflate; client_max_window_bits"))
	require.NotNil(t, c.Deflate)
	require.True(t, c.Deflate.ServerNoContextTakeover)
	require.True(t, c.Deflate.ClientNoContextTakeover)
	require.Equal(t, 12, c.Deflate.ServerMaxWindowBits)
	msg := bytes.Repeat([]byte("compress me "), 100)
	c.Write(t, wstest.Compressed(gws.OpText, c.Deflate.Compress(msg), 0))
	c.ExpectCompressed(t, gws.OpText, msg)
	c.Write(t, wstest.Text([]byte("aaaaaaaaaaaaaaaa"))) // 16 bytes, over -compression-min-size, and they shrink
	c.ExpectCompressed(t, gws.OpText, []byte("aaaaaaaaaaaaaaaa"))
	c.Write(t, wstest.Text([]byte("short")))
	f := c.Next(t)
	require.Zero(t, f.Rsv, "a reply under -compression-min-size went out compressed")
}

func TestBadFlags(t *testing.T) {
	bin := buildEcho(t)
	for _, args := range [][]string{{"-numa", "7"}, {"-numa", "x"}, {"-batch", "0"}, {"-workers", "-2"},
		{"-compression", "-compression-level", "10"}, {"-compression", "-compression-window-bits", "16"}} {
		out, err := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...).CombinedOutput()
		require.Error(t, err, "%v should fail", args)
		require.Contains(t, string(out), "echo: ", "%v: a clear error: %s", args, out)
	}
	out, err := exec.Command(bin, "-topology", "-json").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), `"schema": "topo/v1"`)
}

// TestExitStatusForcedShutdown: a client that never answers its close 1001
// holds the shutdown until -shutdown-timeout; echo then closes it, says so
// on stderr and exits 3, not 0.
func TestExitStatusForcedShutdown(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "1", "-shutdown-timeout", "300ms")
	c := wstest.Dial(t, s.addr)
	defer c.Close()
	c.Write(t, wstest.Text([]byte("hi")))
	c.ExpectMessage(t, gws.OpText, []byte("hi"))
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	f := c.Next(t)
	require.Equal(t, gws.OpClose, f.Op) // and no answer
	rest, _ := io.ReadAll(s.stdout)
	require.Contains(t, string(rest), "Server stopped, not gracefully.")
	err := s.cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "echo must fail when it had to force clients out")
	require.Equal(t, exitForced, ee.ExitCode())
	require.Contains(t, s.stderr.String(), "1 client(s) closed without the close handshake")
}

// TestExitCode: the statuses for each way run can end.
func TestExitCode(t *testing.T) {
	forced := &ws.ShutdownError{Forced: 2, Err: context.DeadlineExceeded}
	kept := fmt.Errorf("%w: %w", ws.ErrPoolsKept, hugepage.ErrInUse)
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"graceful", nil, exitOK},
		{"did not start", errors.New("ws: listen: address in use"), exitFailed},
		{"forced", forced, exitForced},
		{"pools kept", kept, exitPoolsKept},
		{"forced and pools kept", errors.Join(forced, kept), exitBoth},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}
