package testenv

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// OpenHandles is the number of socket and completion port handles the
// process holds: what the reactor opens. Tests compare it before and after,
// so that a leak fails them.
//
// Counting every handle (GetProcessHandleCount) would also count the Go
// runtime's threads and their events and timers, which grow as the runtime
// starts threads for locked loops; wine 8's GetProcessHandleCount is
// moreover a stub that answers 0. Nor can /proc/self/fd help: under wine it
// lists the wine process's Linux descriptors, not Windows handles.
// NtQuerySystemInformation(SystemExtendedHandleInformation) lists handles
// with their object type on Windows and under wine; a probe socket and port
// tell which type numbers to count.
func OpenHandles(t testing.TB) int {
	t.Helper()
	s, err := windows.WSASocket(windows.AF_INET, windows.SOCK_STREAM, windows.IPPROTO_TCP, nil, 0, windows.WSA_FLAG_OVERLAPPED)
	if err != nil {
		t.Fatalf("testenv: probe socket: %v", err)
	}
	defer windows.Closesocket(s)
	port, err := windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 1)
	if err != nil {
		t.Fatalf("testenv: probe completion port: %v", err)
	}
	defer windows.CloseHandle(port)
	entries := systemHandles(t)
	pid := uintptr(windows.GetCurrentProcessId())
	types := map[uint16]bool{}
	for _, e := range entries {
		if e.PID == pid && (e.Handle == uintptr(s) || e.Handle == uintptr(port)) {
			types[e.Type] = true
		}
	}
	if len(types) == 0 {
		t.Fatal("testenv: the probe handles are not in SystemExtendedHandleInformation")
	}
	n := -2 // the probes
	for _, e := range entries {
		if e.PID == pid && types[e.Type] {
			n++
		}
	}
	return n
}

// handleEntry is SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX.
type handleEntry struct {
	Object    uintptr
	PID       uintptr
	Handle    uintptr
	Access    uint32
	Backtrace uint16
	Type      uint16
	Attrs     uint32
	_         uint32
}

// systemHandles returns every handle of the system with its owner and type.
func systemHandles(t testing.TB) []handleEntry {
	const systemExtendedHandleInformation = 64
	for size := 1 << 20; size <= 1<<28; size *= 4 {
		buf := make([]byte, size)
		var got uint32
		err := windows.NtQuerySystemInformation(systemExtendedHandleInformation, unsafe.Pointer(&buf[0]), uint32(len(buf)), &got)
		if err == windows.STATUS_INFO_LENGTH_MISMATCH {
			continue
		}
		if err != nil {
			t.Fatalf("testenv: NtQuerySystemInformation(SystemExtendedHandleInformation): %v", err)
		}
		// A count and a reserved word, then the entries.
		n := *(*uintptr)(unsafe.Pointer(&buf[0]))
		return unsafe.Slice((*handleEntry)(unsafe.Pointer(&buf[2*unsafe.Sizeof(uintptr(0))])), n)
	}
	t.Fatal("testenv: SystemExtendedHandleInformation larger than 256 MiB")
	return nil
}
