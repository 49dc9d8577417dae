package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// cpuTicks is the process's user+system time in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// TestAcceptEMFILE runs echo with a tiny open-file limit and connects more
// clients than it may hold: accept fails with EMFILE, the server logs it and
// pauses accepting instead of spinning on the listener, and once clients
// leave it accepts the waiting ones.
func TestAcceptEMFILE(t *testing.T) {
	bin := buildEcho(t)
	s := start(t, []string{"sh", "-c", `ulimit -n 40 && exec "$0" "$@"`}, bin, "-workers", "1")
	// upgrade runs the handshake on c: false if the server did not answer
	// with a good 101 in time.
	upgrade := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		return wstest.NewClient(c).Handshake(s.addr) == nil
	}
	var mu sync.Mutex
	var served, waiting []net.Conn
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		c, err := net.Dial("tcp", s.addr) // the kernel completes these: the backlog holds them
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := upgrade(c)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				served = append(served, c)
			} else {
				waiting = append(waiting, c)
			}
		}()
	}
	wg.Wait()
	require.NotEmpty(t, served)
	require.NotEmpty(t, waiting, "all 60 served: the file limit did not bite")
	require.Contains(t, s.stderr.String(), "accept failing, pausing accepts")

	// Not a busy loop: while accepts keep failing the server mostly sleeps.
	t0 := cpuTicks(t, s.cmd.Process.Pid)
	time.Sleep(time.Second)
	require.Less(t, cpuTicks(t, s.cmd.Process.Pid)-t0, 70, "the server spins on a failing accept")

	// Every client leaves (the waiting ones too: the server would accept
	// them from the backlog and fill up again); a new one is served.
	for _, c := range append(served, waiting...) {
		c.Close()
	}
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return upgrade(c)
	}, 15*time.Second, 100*time.Millisecond, "the server never accepted again")
}
