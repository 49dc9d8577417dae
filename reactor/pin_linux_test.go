package reactor

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestThreadsPinnedAndNamed: each loop thread is named reactor-N and may run
// on exactly its CPU.
func TestThreadsPinnedAndNamed(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	h := newEchoHandler()
	e := startEngine(t, h, 2)
	for _, l := range e.Loops() {
		deadline := time.Now().Add(5 * time.Second)
		for l.TID() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		dir := fmt.Sprintf("/proc/self/task/%d/", l.TID())
		comm, err := os.ReadFile(dir + "comm")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("reactor-%d", l.Index()); strings.TrimSpace(string(comm)) != want {
			t.Errorf("loop %d: thread name %q, want %q", l.Index(), comm, want)
		}
		status, err := os.ReadFile(dir + "status")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Cpus_allowed_list:\t%d\n", l.Spec().CPU); !strings.Contains(string(status), want) {
			t.Errorf("loop %d: want %q in its status", l.Index(), want)
		}
	}
}
