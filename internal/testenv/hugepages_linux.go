package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// lockHugePages holds an exclusive lock, across processes, on the machine's
// huge page reservation until the test's cleanup: go test runs packages in
// parallel processes, and two tests that each raise the reservation and
// later restore "their" old value would otherwise undo each other's pages
// (or leave some reserved for good).
func lockHugePages(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "hioload-ws-hugepages.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testenv: huge page lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("testenv: huge page lock: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing the file drops the lock
}

// FreeHugePages is HugePages_Free from /proc/meminfo: free 2 MiB pages on
// the whole machine.
func FreeHugePages(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "HugePages_Free:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("testenv: HugePages_Free: %q", v)
			}
			return n
		}
	}
	t.Fatal("testenv: no HugePages_Free in /proc/meminfo")
	return 0
}

// ReserveHugePages raises node 0's 2 MiB huge page reservation by n for the
// test and restores the old value at cleanup. On a one-node machine it writes
// vm.nr_hugepages; with more nodes it writes node 0's own knob, because the
// global one spreads pages over all nodes and leaves node 0 short. It skips
// when not root or when the kernel could not find n free pages on node 0
// (memory fragmented). It holds a lock shared with every other test
// process that reserves pages until its cleanup. Once it returns, the pages are there, so a pool on
// node 0 that asks for at most n of them must get hugetlb memory: a test
// may require it.
func ReserveHugePages(t testing.TB, n int) {
	t.Helper()
	knob, free := "/proc/sys/vm/nr_hugepages", ""
	if _, err := os.Stat("/sys/devices/system/node/node1"); err == nil {
		knob = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
		free = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages"
	}
	if os.Geteuid() != 0 {
		t.Skip("reserving huge pages needs root (writes " + knob + ")")
	}
	lockHugePages(t) // released after the restore below (cleanups run last first)
	b, err := os.ReadFile(knob)
	if err != nil {
		t.Skipf("no %s: %v", knob, err)
	}
	old := strings.TrimSpace(string(b))
	oldN, err := strconv.Atoi(old)
	if err != nil {
		t.Fatalf("testenv: %s: %q", knob, old)
	}
	if err := os.WriteFile(knob, []byte(strconv.Itoa(oldN+n)), 0); err != nil {
		t.Skipf("cannot reserve huge pages: %v", err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(knob, []byte(old), 0); err != nil {
			t.Errorf("testenv: restoring %s to %s: %v", knob, old, err)
		}
	})
	got := FreeHugePages(t)
	if free != "" {
		b, err := os.ReadFile(free)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		got, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if got < n {
		t.Skipf("asked %s for %d more huge pages, node 0 has only %d free (memory fragmented?)", knob, n, got)
	}
}
