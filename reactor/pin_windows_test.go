package reactor

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// TestThreadsPinnedAndNamed: each loop thread is named reactor-N and
// its group affinity is exactly its CPU.
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
		th, err := windows.OpenThread(windows.THREAD_QUERY_LIMITED_INFORMATION, false, uint32(l.TID()))
		if err != nil {
			t.Fatalf("OpenThread %d: %v", l.TID(), err)
		}
		defer windows.CloseHandle(th)
		var ga groupAffinity
		if err := getThreadGroupAffinity(th, &ga); err != nil {
			t.Fatal(err)
		}
		cpu := l.Spec().CPU
		if want := (groupAffinity{Mask: 1 << (cpu % 64), Group: uint16(cpu / 64)}); ga != want {
			t.Errorf("loop %d: affinity %+v, want %+v", l.Index(), ga, want)
		}
		var name *uint16
		err = getThreadDescription(th, &name)
		if err == hresultFromNTSuccess && testenv.WineVersion() != "" {
			err = nil // wine 8 returns HRESULT_FROM_NT(STATUS_SUCCESS), not S_OK
		}
		switch {
		case err != nil && testenv.WineVersion() != "":
			t.Logf("loop %d: GetThreadDescription: %v (wine %s)", l.Index(), err, testenv.WineVersion())
		case err != nil:
			t.Errorf("loop %d: GetThreadDescription: %v", l.Index(), err)
		default:
			got := windows.UTF16PtrToString(name)
			windows.LocalFree(windows.Handle(uintptr(unsafePointer(name))))
			if want := fmt.Sprintf("reactor-%d", l.Index()); got != want {
				if testenv.WineVersion() != "" && got == "" {
					t.Logf("loop %d: wine %s keeps no thread descriptions", l.Index(), testenv.WineVersion())
					continue
				}
				t.Errorf("loop %d: thread name %q, want %q", l.Index(), got, want)
			}
		}
	}
}
