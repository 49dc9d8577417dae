package reactor

import (
	"errors"
	"math/bits"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/windows"
)

// The IOCP poller. Each loop owns one completion port;
// GetQueuedCompletionStatusEx dequeues up to Config.Batch completions per
// turn. What the kernel keeps for us is a completion key and an OVERLAPPED
// inside a heap object that the loop's tables reference until its
// completion is dequeued (Go's heap does not move objects):
//
//	key = tag in the top 3 bits | payload
//	  keyWake     a wakeup posted by signal
//	  keyHandoff  an accepted socket from loop 0's acceptor; the SOCKET is the
//	              completion's byte count (kernel handles have 32 significant
//	              bits so that 32- and 64-bit processes can share them; see
//	              "Interprocess Communication Between 32-bit and 64-bit
//	              Applications" on learn.microsoft.com)
//	  keyAccept   an AcceptEx completed on loop 0
//	  keyConn     a connection's receive or send completed (payload: gen | slot)
//
// A completion's OVERLAPPED pointer is never turned back into a Go pointer:
// the key finds the connection, and comparing the pointer with the
// connection's two OVERLAPPEDs says which operation finished.
//
// Reading uses the zero-byte receive (as libuv does on Windows): a WSARecv of
// 0 bytes stays pending until data or EOF arrives, pinning no buffer; its
// completion is the readiness event, and the loop then reads synchronously
// (non-blocking) exactly as the epoll loop does, so OnRead sees the same
// headroom, leftovers and RetainRead. Writing gathers the loop's buffers as
// WSABUFs into one non-blocking WSASend; only the bytes the kernel does not
// take right away are copied to the write queue, which then leaves with one
// overlapped WSASend at a time (conn_windows.go).

const (
	keyTagShift = bits.UintSize - 3
	keyWake     = 1 << keyTagShift
	keyHandoff  = 2 << keyTagShift
	keyAccept   = 3 << keyTagShift
	keyConn     = 4 << keyTagShift
	keyPayload  = 1<<keyTagShift - 1
	// slotBits: 16M connections per loop on 64-bit, 1M on 32-bit; the
	// generation gets the bits above (all 32 of it on 64-bit, 9 on 32-bit,
	// where it is only a consistency check: a slot is never reused while an
	// operation of its previous connection is in flight).
	slotBits = 20 + 4*(bits.UintSize/64)
	slotMask = 1<<slotBits - 1
	genMask  = 1<<min(keyTagShift-slotBits, 32) - 1
)

// settleTimeout bounds how long a finishing loop waits for the completions
// of operations that closing their sockets cancelled.
const settleTimeout = 2 * time.Second

// hasPoller says whether this build has a poller.
const hasPoller = true

type poller struct {
	port    windows.Handle
	entries []overlappedEntry
	free    []uint32 // free slots of Loop.conns
	wsabufs [maxIov]windows.WSABuf
	gen     uint32
	ops     int       // operations posted and not yet dequeued (connections and accepts)
	ln      *acceptor // loop 0 only
}

func (l *Loop) openPoller() error {
	if err := startWinsock(); err != nil {
		return err
	}
	p := &l.p
	port, err := windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 1)
	if err != nil {
		return os.NewSyscallError("CreateIoCompletionPort", err)
	}
	p.port = port
	if l.idx != 0 {
		return nil
	}
	// Windows has no SO_REUSEPORT: one listening socket, on loop 0's port,
	// hands accepted sockets to the loops in turn.
	if p.ln, err = listen(l.e); err == nil {
		_, err = windows.CreateIoCompletionPort(p.ln.s, port, keyAccept, 0)
		err = os.NewSyscallError("CreateIoCompletionPort", err)
	}
	if err != nil {
		l.stopAccepting()
		l.closePoller()
		return err
	}
	return nil
}

var winsock struct {
	once atomic.Bool
	err  error
}

// startWinsock calls WSAStartup once. The Go runtime's net package does it
// too, but the reactor must not depend on net having been used first.
func startWinsock() error {
	if winsock.once.CompareAndSwap(false, true) {
		var d windows.WSAData
		if err := windows.WSAStartup(uint32(0x202), &d); err != nil {
			winsock.err = os.NewSyscallError("WSAStartup", err)
		}
	}
	return winsock.err
}

func (l *Loop) closePoller() {
	if l.p.port != 0 {
		windows.CloseHandle(l.p.port)
		l.p.port = 0
	}
}

// post queues a completion with key and qty on l's port from any goroutine;
// ErrClosed once the loop stopped taking posts (closePosts).
func (l *Loop) post(key uintptr, qty uint32) error {
	if l.posters.Add(1) < 0 {
		l.posters.Add(-1)
		return ErrClosed
	}
	err := windows.PostQueuedCompletionStatus(l.p.port, qty, key, nil)
	l.posters.Add(-1)
	return os.NewSyscallError("PostQueuedCompletionStatus", err)
}

func (l *Loop) wakePoller() error {
	if err := l.post(keyWake, 0); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

func (l *Loop) poll(timeout time.Duration) (int, error) {
	p := &l.p
	if p.ln != nil && !p.ln.started {
		p.ln.start(l) // on the loop's thread, once
	}
	if b := int(l.batch.Load()); b != len(p.entries) {
		p.entries = make([]overlappedEntry, b)
	}
	ms := uint32(windows.INFINITE)
	if timeout >= 0 {
		ms = uint32(timeout / time.Millisecond)
	}
	n, err := l.dequeue(ms)
	l.now = time.Now().UnixNano()
	if err != nil {
		return 0, err
	}
	for i := range n {
		l.complete(&p.entries[i])
	}
	return n, nil
}

// dequeue waits up to timeout milliseconds for completions.
func (l *Loop) dequeue(timeout uint32) (int, error) {
	p := &l.p
	var n uint32
	err := getQueuedCompletionStatusEx(p.port, &p.entries[0], uint32(len(p.entries)), &n, timeout, false)
	switch {
	case err == nil:
		return int(n), nil
	case errors.Is(err, windows.WAIT_TIMEOUT):
		return 0, nil
	}
	return 0, os.NewSyscallError("GetQueuedCompletionStatusEx", err)
}

// complete handles one dequeued completion.
func (l *Loop) complete(e *overlappedEntry) {
	p := &l.p
	payload := e.Key & keyPayload
	switch e.Key &^ keyPayload {
	case keyWake:
		l.handleWake()
	case keyHandoff:
		l.onHandoff(windows.Handle(e.Qty))
	case keyAccept:
		if p.ln != nil {
			p.ops--
			p.ln.done(l, e.Overlapped)
		}
	case keyConn:
		slot := int(payload & slotMask)
		if slot >= len(l.conns) || l.conns[slot] == nil || l.conns[slot].gen&genMask != uint32(payload>>slotBits) {
			l.log.Error("reactor: completion for an unknown connection", "loop", l.idx, "slot", slot)
			return
		}
		p.ops--
		l.conns[slot].done(e.Overlapped, e.Qty)
	}
}

// settle waits (bounded) for the completions of the operations that
// closing the sockets cancelled: their OVERLAPPEDs and buffers must stay put
// until the kernel is done with them. No wakeup or handoff can arrive any
// more (closePosts); the ones already queued are drained (a handed-over
// socket is closed).
func (l *Loop) settle() {
	p := &l.p
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		wait := uint32(tickInterval / time.Millisecond)
		if p.ops == 0 {
			wait = 0 // only queued wakeups and handoffs are left
		}
		n, err := l.dequeue(wait)
		if err != nil || n == 0 && p.ops == 0 {
			break
		}
		for i := range n {
			l.complete(&p.entries[i])
		}
	}
	if p.ops > 0 {
		l.log.Warn("reactor: operations still pending at exit", "loop", l.idx, "ops", p.ops)
	}
}

// onHandoff opens a socket that loop 0 accepted for this loop.
func (l *Loop) onHandoff(s windows.Handle) {
	if l.stopping {
		windows.Closesocket(s)
		return
	}
	l.open(s)
}

func nameThread(name string) error {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return err
	}
	return setThreadDescription(windows.CurrentThread(), p)
}

func threadID() int { return int(windows.GetCurrentThreadId()) }

// onMainThread is false: on Windows no thread's name or affinity passes to
// the process or to threads created later, so a loop may own any thread.
func onMainThread() bool { return false }

// FileLimit is -1: Windows has no per-process descriptor limit like
// RLIMIT_NOFILE (handles are limited by memory).
func FileLimit() int { return -1 }
