//go:build !linux && !windows

package testenv

import "testing"

// OpenHandles skips: the reactor, whose handles tests count, runs on Linux
// and Windows only.
func OpenHandles(t testing.TB) int {
	t.Helper()
	t.Skip("no reactor here: nothing to count")
	return 0
}
