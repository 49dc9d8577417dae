package reactor

import (
	"os"
	"strings"
	"testing"
)

// kernelMappings counts the io_uring rings mapped into the process
// (/proc/self/maps names them anon_inode:[io_uring]): the io_uring engine
// maps two per loop and must unmap them when the loop is done.
func kernelMappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatalf("read maps: %v", err)
	}
	return strings.Count(string(b), "io_uring")
}
