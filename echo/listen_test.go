package main

import (
	"os/exec"
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
