package reactor

import (
	"os"
	"testing"
)

// openHandles is the number of descriptors the process holds.
func openHandles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	return len(ents)
}
