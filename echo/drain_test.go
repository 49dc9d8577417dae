package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// adminBase reads the "metrics on" line of a server started with -metrics
// and returns its http://host:port.
func adminBase(t *testing.T, s *server) string {
	t.Helper()
	url, ok := strings.CutPrefix(nextLine(t, s), "echo: metrics on ")
	require.True(t, ok, "no metrics line")
	return strings.TrimSuffix(url, "/metrics")
}

var probeClient = &http.Client{Timeout: 5 * time.Second}

// probe GETs url and returns the status and the body.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := probeClient.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// echoes writes n messages tagged with name and reads their echoes.
func echoes(t *testing.T, c *wstest.Client, name string, n int) {
	t.Helper()
	for i := range n {
		c.Write(t, wstest.Text(fmt.Appendf(nil, "%s %d", name, i)))
	}
	for i := range n {
		c.ExpectMessage(t, gws.OpText, fmt.Appendf(nil, "%s %d", name, i))
	}
}

// expectGoingAway reads the server's close 1001, answers it and expects the
// end of the connection.
func expectGoingAway(t *testing.T, c *wstest.Client) {
	t.Helper()
	f := c.Next(t)
	require.Equal(t, gws.OpClose, f.Op, "want close 1001, got %v", f)
	require.GreaterOrEqual(t, len(f.Payload), 2)
	require.Equal(t, 1001, int(binary.BigEndian.Uint16(f.Payload)))
	c.Write(t, wstest.Close(1001, ""))
	c.ExpectEOF(t)
}

// TestHealthAndReadiness: the probes answer on the admin address; other
// paths still reach the metrics mux.
func TestHealthAndReadiness(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "1", "-metrics", "127.0.0.1:0")
	base := adminBase(t, s)
	code, body := probe(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = probe(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready\n", body)
	code, body = probe(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "hioload_connections ")
	resp, err := probeClient.Post(base+"/readyz", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// TestDrainOnSIGTERM is a rolling update as the kubelet drives it: on
// SIGTERM /readyz fails at once while /healthz stays up; for -drain-delay
// the server still serves its clients and accepts new ones; then every
// client gets its messages echoed and close 1001, and echo exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	bin := buildEcho(t)
	const delay = 3 * time.Second
	s := start(t, nil, bin, "-workers", "1", "-metrics", "127.0.0.1:0", "-drain-delay", delay.String())
	base := adminBase(t, s)
	old := wstest.Dial(t, s.addr)
	defer old.Close()
	echoes(t, old, "before", 2)

	t0 := time.Now()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		code, _ := probe(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	}, delay/2, 20*time.Millisecond, "/readyz must fail as soon as the drain starts")
	code, body := probe(t, base+"/readyz")
	require.Equal(t, "draining\n", body)
	require.Equal(t, http.StatusServiceUnavailable, code)
	code, _ = probe(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "liveness holds during the drain")

	// A client that the load balancer still sends is accepted and served.
	late := wstest.Dial(t, s.addr)
	defer late.Close()
	echoes(t, late, "during", 3)
	echoes(t, old, "during", 3)
	require.Less(t, time.Since(t0), delay, "the drain ended before the test could check it")

	// Messages sent near the end of the delay are answered before the close.
	for _, c := range []*wstest.Client{old, late} {
		for i := range 3 {
			c.Write(t, wstest.Text(fmt.Appendf(nil, "last %d", i)))
		}
	}
	for _, c := range []*wstest.Client{old, late} {
		for i := range 3 {
			c.ExpectMessage(t, gws.OpText, fmt.Appendf(nil, "last %d", i))
		}
		expectGoingAway(t, c)
	}
	require.GreaterOrEqual(t, time.Since(t0), delay-50*time.Millisecond, "close 1001 came before the drain delay ended")
	rest, _ := io.ReadAll(s.stdout)
	require.Contains(t, string(rest), "Draining echo server (terminated)")
	require.Contains(t, string(rest), "Server stopped.")
	require.NoError(t, s.cmd.Wait(), "echo exits 0 after a drain")
}

// TestDrainCutShort: a second signal ends a long drain delay at once.
func TestDrainCutShort(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "1", "-metrics", "127.0.0.1:0", "-drain-delay", "10m")
	base := adminBase(t, s)
	c := wstest.Dial(t, s.addr)
	defer c.Close()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		code, _ := probe(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	}, 5*time.Second, 20*time.Millisecond)
	echoes(t, c, "draining", 1)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGINT))
	expectGoingAway(t, c)
	require.NoError(t, s.cmd.Wait(), "echo exits 0")
	require.Contains(t, s.stderr.String(), "drain: cut short")
}
