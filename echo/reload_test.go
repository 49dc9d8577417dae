package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// nextLine reads the server's next stdout line, bounded.
func nextLine(t *testing.T, s *server) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		line, _ := s.stdout.ReadString('\n')
		ch <- line
	}()
	select {
	case line := <-ch:
		return strings.TrimSpace(line)
	case <-time.After(10 * time.Second):
		t.Fatal("no line from echo")
	}
	return ""
}

// gauge scrapes url and returns the value of the unlabelled metric name
// (a gauge, or a counter).
func gauge(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	f, ok := fams[name]
	require.True(t, ok, "no %s", name)
	if c := f.Metric[0].GetCounter(); c != nil {
		return c.GetValue()
	}
	return f.Metric[0].GetGauge().GetValue()
}

// roundTrip sends n bytes on a new connection and returns the close code
// the server answered with, or 0 if it echoed the message.
func roundTrip(t *testing.T, addr string, n int) gws.StatusCode {
	t.Helper()
	c := wstest.Dial(t, addr)
	defer c.Close()
	p := make([]byte, n)
	c.Write(t, wstest.Binary(p))
	f := c.Next(t)
	if f.Op == gws.OpClose {
		return gws.StatusCode(binary.BigEndian.Uint16(f.Payload))
	}
	require.Equal(t, p, f.Payload)
	return 0
}

// TestSIGHUPReload: echo -config applies the file at start, SIGHUP applies
// a changed file (a smaller message limit closes the next big message with
// 1009, the new batch size shows on /metrics), and a bad file is refused
// with the settings unchanged and the server still serving.
func TestSIGHUPReload(t *testing.T) {
	bin := buildEcho(t)
	cfgPath := filepath.Join(t.TempDir(), "echo.json")
	write := func(body string) { require.NoError(t, os.WriteFile(cfgPath, []byte(body), 0o600)) }
	write(`{"batch_size": 16}`)
	s := start(t, nil, bin, "-workers", "1", "-config", cfgPath, "-metrics", "127.0.0.1:0")
	metricsURL, ok := strings.CutPrefix(nextLine(t, s), "echo: metrics on ")
	require.True(t, ok)
	base := strings.TrimSuffix(metricsURL, "/metrics")
	require.Equal(t, 16.0, gauge(t, metricsURL, "hioload_batch_size"), "-config applies at start")
	require.Zero(t, roundTrip(t, s.addr, 4000))

	write(`{"batch_size": 8, "max_frame_size": 1000, "max_message_size": 1000}`)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return gauge(t, metricsURL, "hioload_max_message_bytes") == 1000 },
		5*time.Second, 20*time.Millisecond)
	require.Equal(t, 8.0, gauge(t, metricsURL, "hioload_batch_size"))
	require.Equal(t, gws.StatusMessageTooBig, roundTrip(t, s.addr, 4000))

	write(`{"max_message_size": 10}`) // below the frame limit: refused
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 1000.0, gauge(t, metricsURL, "hioload_max_message_bytes"), "a bad file changes nothing")
	require.Equal(t, 8.0, gauge(t, metricsURL, "hioload_batch_size"))
	require.Zero(t, roundTrip(t, s.addr, 500), "still serving")

	resp, err := http.Get(base + "/debug/probes")
	require.NoError(t, err)
	var probes map[string]json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&probes))
	resp.Body.Close()
	require.JSONEq(t, "2", string(probes["messages_processed"]), "the two echoed messages")
	require.Contains(t, probes, "active_connections")
	require.JSONEq(t, `"INFO"`, string(probes["log_level"]))

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, s.cmd.Wait(), "echo exits 0")
}

func TestBadConfigFileAtStart(t *testing.T) {
	bin := buildEcho(t)
	cfgPath := filepath.Join(t.TempDir(), "echo.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`{"batch_size": 8, "typo": 1}`), 0o600))
	out, err := exec.Command(bin, "-addr", "127.0.0.1:0", "-config", cfgPath).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `echo: `+cfgPath)
	require.Contains(t, string(out), `unknown field "typo"`)
}

// TestNoMetricsByDefault: without -metrics, echo listens on the
// WebSocket port only (one socket per loop; one loop here).
func TestNoMetricsByDefault(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "1")
	require.Equal(t, 1, listeners(t, s.cmd.Process.Pid))
}

// listeners counts the listening TCP sockets that process pid holds.
func listeners(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/", pid)
	held := map[string]bool{}
	fds, err := os.ReadDir(dir + "fd")
	require.NoError(t, err)
	for _, fd := range fds {
		if l, err := os.Readlink(dir + "fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			held[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		data, err := os.ReadFile(dir + table)
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && held[f[9]] { // 0A: TCP_LISTEN; f[9]: inode
				n++
			}
		}
	}
	return n
}
