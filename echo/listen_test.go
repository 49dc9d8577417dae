package main

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// TestSecondInstanceRefused is issue #14's point 7 through the binary: a
// second echo on the address of a running one used to start silently and
// take half its connections (both listen with SO_REUSEPORT). It now exits
// with an error naming the address; -reuse-port makes sharing deliberate.
func TestSecondInstanceRefused(t *testing.T) {
	bin := buildEcho(t)
	first := start(t, nil, bin, "-workers", "1")
	cmd := exec.Command(bin, "-addr", first.addr, "-stats", "0", "-workers", "1")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("a second echo on %s started: %s", first.addr, out)
	}
	require.Error(t, err)
	require.Contains(t, string(out), "echo: reactor: address in use by another listener: "+first.addr)
	require.Contains(t, string(out), "-reuse-port")
	require.NotContains(t, string(out), "listening on")

	// Deliberate sharing: with -reuse-port the second one joins and serves.
	second := start(t, nil, bin, "-addr", first.addr, "-workers", "1", "-reuse-port")
	require.Equal(t, first.addr, second.addr)
	c := wstest.Dial(t, second.addr)
	c.Write(t, wstest.Text([]byte("shared")))
	c.ExpectMessage(t, 1, []byte("shared"))
}

// TestMetricsWithoutPprof is issue #14's point 9 through the binary: with
// -metrics, echo served pprof, goroutine dumps and its command line to
// whoever reached the address. They now need -pprof, which needs -metrics.
func TestMetricsWithoutPprof(t *testing.T) {
	bin := buildEcho(t)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, pprof := range []bool{false, true} {
		args := []string{"-workers", "1", "-metrics", "127.0.0.1:0"}
		if pprof {
			args = append(args, "-pprof")
		}
		s := start(t, nil, bin, args...)
		url, ok := strings.CutPrefix(nextLine(t, s), "echo: metrics on ")
		require.True(t, ok)
		base := strings.TrimSuffix(url, "/metrics")
		code, _ := get(url)
		require.Equal(t, http.StatusOK, code)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/debug/pprof/cmdline"} {
			code, body := get(base + path)
			if !pprof {
				require.Equal(t, http.StatusNotFound, code, path)
				continue
			}
			require.Equal(t, http.StatusOK, code, path)
			require.NotEmpty(t, body, path)
		}
		require.NotContains(t, s.stderr.String(), "metrics listener reachable", "127.0.0.1 is loopback: no warning")
	}
	out, err := exec.Command(bin, "-addr", "127.0.0.1:0", "-pprof").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "-pprof needs -metrics")
}
