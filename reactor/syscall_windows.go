package reactor

import "golang.org/x/sys/windows"

// x/sys/windows lacks these procs; mkwinsyscall turns the lines below into
// zsyscall_windows.go: run, on any host,
//
//	cd reactor && go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go
//
// (a go:generate line here would only run under GOOS=windows, where go run
// builds a Windows mkwinsyscall; cnuma keeps its line in a portable file for
// that reason). SetThreadDescription
// is optional (Windows 10 1607 and later): its "?" makes a missing proc an
// error instead of a panic. The GetThread* procs are for the tests, which
// check pinning and names with them.

//sys	getQueuedCompletionStatusEx(port windows.Handle, entries *overlappedEntry, count uint32, removed *uint32, timeout uint32, alertable bool) (err error) = kernel32.GetQueuedCompletionStatusEx
//sys	setThreadDescription(thread windows.Handle, name *uint16) (ret error) = kernel32.SetThreadDescription?
//sys	getThreadGroupAffinity(thread windows.Handle, affinity *groupAffinity) (err error) = kernel32.GetThreadGroupAffinity
//sys	getThreadDescription(thread windows.Handle, name **uint16) (ret error) = kernel32.GetThreadDescription?
//sys	ioctlsocket(s windows.Handle, cmd uint32, arg *uint32) (err error) [failretval==socket_error] = ws2_32.ioctlsocket

// socket_error is SOCKET_ERROR as the generated code compares it.
const socket_error = uintptr(^uint32(0))

// overlappedEntry is OVERLAPPED_ENTRY, one completion that
// GetQueuedCompletionStatusEx dequeued.
type overlappedEntry struct {
	Key        uintptr
	Overlapped *windows.Overlapped
	Internal   uintptr
	Qty        uint32
}

// groupAffinity is GROUP_AFFINITY: a processor group and a mask of its CPUs.
type groupAffinity struct {
	Mask     uintptr
	Group    uint16
	Reserved [3]uint16
}

// fionbio is FIONBIO for ioctlsocket: non-blocking mode on or off.
const fionbio = 0x8004667e
