package testenv

import (
	"os"
	"testing"
)

// OpenHandles is the number of descriptors the process holds: what a
// server's sockets, epoll instances and eventfds add up to. Tests compare it
// before and after, so that a leak fails them.
func OpenHandles(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("testenv: count descriptors: %v", err)
	}
	return len(ents)
}
