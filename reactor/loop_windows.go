package reactor

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/windows"

	"github.com/hioload-ws/hioload-ws/cnuma"
	"github.com/hioload-ws/hioload-ws/internal/ring"
)

// The IOCP loop. Each loop owns one completion port; GetQueuedCompletionStatusEx
// dequeues up to Config.Batch completions per turn. What the kernel keeps for
// us is a completion key and an OVERLAPPED inside a heap object that the
// loop's tables reference until its completion is dequeued (Go's heap does
// not move objects):
//
//	key = tag in the top 3 bits | payload
//	  keyWake     a wakeup posted by signal
//	  keyHandoff  an accepted socket from loop 0's acceptor; the SOCKET is the
//	              completion's byte count (kernel handles have 32 significant
//	              bits so that 32- and 64-bit processes can share them; see
//	              "Interprocess Communication Between 32-bit and 64-bit
//	              Applications" on learn.microsoft.com)
//	  keyAccept   an AcceptEx completed on loop 0
//	  keyConn     a connection's read or send completed (payload: gen | slot)
//
// A completion's OVERLAPPED pointer is never turned back into a Go pointer:
// the key finds the connection, and comparing the pointer with the
// connection's two OVERLAPPEDs says which operation finished.
//
// Reading uses the zero-byte receive (as libuv does on Windows): a WSARecv of
// 0 bytes stays pending until data or EOF arrives, pinning no buffer; its
// completion is the readiness event, and the loop then reads synchronously
// (non-blocking) into its one read buffer, exactly as the epoll loop does, so
// OnRead sees the same headroom, leftovers and RetainRead. Writing gathers
// the loop's iovecs as WSABUFs into one non-blocking WSASend; only the bytes
// the kernel does not take right away are copied to the write queue, which
// then leaves with one overlapped WSASend at a time (see conn_windows.go).

// maxIov bounds the WSABUFs of one WSASend; Windows has no IOV_MAX, this only
// keeps the loop's array small.
const maxIov = 1024

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

// portClosed is added to loopPlat.users when the port is closed: posters
// that see a negative count stay away from the handle.
const portClosed = math.MinInt32 / 2

// drainTimeout bounds how long a finishing loop waits for the completions
// of operations that closing their sockets cancelled.
const drainTimeout = 2 * time.Second

// loopPlat is the IOCP loop's state.
type loopPlat struct {
	port    windows.Handle
	users   atomic.Int32 // goroutines inside PostQueuedCompletionStatus on port
	entries []overlappedEntry
	conns   []*iocpConn // by slot; a closed connection stays until its operations complete
	free    []uint32    // free slots
	iov     [maxIov]windows.WSABuf
	niov    int
	gen     uint32
	ops     int       // operations posted and not yet dequeued (connections and accepts)
	ln      *acceptor // loop 0 only
}

func (p *loopPlat) setIov(b []byte) {
	p.iov[p.niov] = windows.WSABuf{Len: uint32(len(b)), Buf: &b[0]}
	p.niov++
}

func newLoop(e *Engine, idx int, spec LoopSpec) (*Loop, error) {
	if err := startWinsock(); err != nil {
		return nil, err
	}
	l := &Loop{
		e: e, h: e.h, log: e.log, idx: idx, spec: spec,
		inbox:   ring.NewMPMC[Task](e.cfg.Ring),
		scratch: make([]byte, 16<<10),
	}
	p := &l.plat
	port, err := windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 1)
	if err != nil {
		return nil, os.NewSyscallError("CreateIoCompletionPort", err)
	}
	p.port = port
	if idx == 0 {
		// Windows has no SO_REUSEPORT: one listening socket, on loop 0's
		// port, hands accepted sockets to the loops in turn.
		if p.ln, err = listen(e); err != nil {
			l.release()
			return nil, err
		}
		if _, err = windows.CreateIoCompletionPort(p.ln.s, port, keyAccept, 0); err != nil {
			l.release()
			return nil, os.NewSyscallError("CreateIoCompletionPort", err)
		}
	}
	p.entries = make([]overlappedEntry, e.cfg.Batch)
	l.batch.Store(int32(e.cfg.Batch))
	if spec.Pool != nil {
		l.cache = spec.Pool.NewCache()
	}
	l.newReadBuffer()
	return l, nil
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

// release closes the loop's listener and port; the loop must not be running.
// Posters racing with it (a Post from another goroutine, loop 0 handing over
// a socket) either finish their PostQueuedCompletionStatus before the handle
// is closed or see the closed mark and do not touch it.
func (l *Loop) release() {
	l.closed.Store(true)
	p := &l.plat
	if p.ln != nil {
		p.ln.close()
	}
	if p.port == 0 {
		return
	}
	l.closePosts()
	windows.CloseHandle(p.port)
	p.port = 0
}

// closePosts makes post fail from now on and waits for posters already
// inside PostQueuedCompletionStatus, so that everything posted to the port
// is in it when closePosts returns.
func (l *Loop) closePosts() {
	p := &l.plat
	if p.users.Load() < 0 {
		return
	}
	if p.users.Add(portClosed) != portClosed {
		for p.users.Load() != portClosed {
			runtime.Gosched()
		}
	}
}

// post queues a completion with key and qty on l's port from any goroutine.
func (l *Loop) post(key uintptr, qty uint32) error {
	p := &l.plat
	if p.users.Add(1) < 0 {
		p.users.Add(-1)
		return ErrClosed
	}
	err := windows.PostQueuedCompletionStatus(p.port, qty, key, nil)
	p.users.Add(-1)
	if err != nil {
		return os.NewSyscallError("PostQueuedCompletionStatus", err)
	}
	return nil
}

func (l *Loop) wake() error {
	if err := l.post(keyWake, 0); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// pin locks the goroutine to its thread, pins the thread to spec.CPU
// (numbered group*64 + bit, as cnuma numbers Windows CPUs) and names it
// reactor-N for debuggers and ETW traces.
func (l *Loop) pin() {
	runtime.LockOSThread()
	// TID is published last: once it is non-zero the thread is named and pinned.
	defer l.tid.Store(int32(windows.GetCurrentThreadId()))
	name, _ := windows.UTF16PtrFromString(fmt.Sprintf("reactor-%d", l.idx))
	if err := setThreadDescription(windows.CurrentThread(), name); err != nil {
		l.log.Debug("reactor: name thread", "loop", l.idx, "err", err)
	}
	if l.spec.CPU < 0 {
		return
	}
	if err := cnuma.PinThread(l.spec.CPU); err != nil {
		l.log.Warn("reactor: pin thread", "loop", l.idx, "cpu", l.spec.CPU, "err", err)
	}
}

// onMainThread is false: on Windows no thread's name or affinity passes to
// the process or to threads created later, so a loop may own any thread.
func onMainThread() bool { return false }

func (l *Loop) run() {
	l.pin()
	defer l.finish()
	p := &l.plat
	l.now = time.Now().UnixNano()
	nextTick := l.now + int64(tickInterval)
	if p.ln != nil {
		p.ln.start(l)
	}
	for {
		timeout := uint32(windows.INFINITE)
		if len(l.timed) > 0 || (p.ln != nil && p.ln.pausedAt != 0) {
			timeout = uint32(tickInterval / time.Millisecond)
		}
		if b := int(l.batch.Load()); b != len(p.entries) {
			p.entries = make([]overlappedEntry, b)
		}
		n, err := l.dequeue(timeout)
		if err != nil {
			l.log.Error("reactor: GetQueuedCompletionStatusEx", "loop", l.idx, "err", err)
			return
		}
		l.now = time.Now().UnixNano()
		l.stats.wakeups.Add(1)
		l.stats.events.Add(uint64(n))
		for i := range n {
			l.complete(&p.entries[i])
		}
		if l.now >= nextTick {
			nextTick = l.now + int64(tickInterval)
			l.sweep()
			if p.ln != nil {
				p.ln.resume(l)
			}
		}
		if l.stopping && l.stats.conns.Load() == 0 {
			return
		}
	}
}

// dequeue waits up to timeout milliseconds for completions.
func (l *Loop) dequeue(timeout uint32) (int, error) {
	p := &l.plat
	var n uint32
	err := getQueuedCompletionStatusEx(p.port, &p.entries[0], uint32(len(p.entries)), &n, timeout, false)
	switch {
	case err == nil:
		return int(n), nil
	case errors.Is(err, windows.WAIT_TIMEOUT):
		return 0, nil
	}
	return 0, err
}

// complete handles one dequeued completion.
func (l *Loop) complete(e *overlappedEntry) {
	p := &l.plat
	payload := e.Key & keyPayload
	switch e.Key &^ keyPayload {
	case keyWake:
		l.onWake()
	case keyHandoff:
		l.onHandoff(windows.Handle(e.Qty))
	case keyAccept:
		if p.ln != nil {
			p.ops--
			p.ln.done(l, e.Overlapped)
		}
	case keyConn:
		slot := int(payload & slotMask)
		if slot >= len(p.conns) || p.conns[slot] == nil || p.conns[slot].gen&genMask != uint32(payload>>slotBits) {
			l.log.Error("reactor: completion for an unknown connection", "loop", l.idx, "slot", slot)
			return
		}
		p.ops--
		p.conns[slot].done(e.Overlapped, e.Qty)
	}
}

func (l *Loop) onWake() {
	l.handleWake()
}

// beginShutdown stops accepting, reads what every connection has already
// sent (so it is handled, not lost), then hands each to OnShutdown.
func (l *Loop) beginShutdown() {
	l.stopping = true
	p := &l.plat
	if p.ln != nil {
		p.ln.close() // pending AcceptEx complete as cancelled and close their sockets
	}
	for _, w := range p.conns {
		if w != nil {
			l.shutdownConn(&w.Conn)
		}
	}
}

func (l *Loop) closeAll(err error) {
	for _, w := range l.plat.conns {
		if w != nil && w.flags&fClosed == 0 {
			w.closeNow(err)
		}
	}
}

// finish closes what is left, then waits (bounded) for the completions of
// the operations that closing cancelled: their OVERLAPPEDs and buffers must
// stay put until the kernel is done with them.
func (l *Loop) finish() {
	l.stopping = true
	p := &l.plat
	l.closeAll(ErrShutdown)
	if p.ln != nil {
		p.ln.close()
	}
	// No wakeup or handoff can arrive from now on; the ones already queued
	// are drained below (a handed-over socket is closed).
	l.closed.Store(true)
	l.closePosts()
	deadline := time.Now().Add(drainTimeout)
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
	l.release()
	l.freeMemory()
	for {
		if _, ok := l.inbox.Pop(); !ok {
			break
		}
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

// FileLimit is -1: Windows has no per-process descriptor limit like
// RLIMIT_NOFILE (handles are limited by memory).
func FileLimit() int { return -1 }
