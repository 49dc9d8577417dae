package reactor

import (
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/hioload-ws/hioload-ws/cnuma"
	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/ring"
	"github.com/hioload-ws/hioload-ws/internal/stack"
)

// The platform contract. A poller is epoll or io_uring on Linux (chosen
// per Engine by Config.IOEngine; see below) and an I/O completion port on
// Windows (poll_windows.go, accept_windows.go, conn_windows.go);
// poll_other.go makes New fail with ErrUnsupported elsewhere. Everything
// else is portable and reaches the platform only through these:
//
//	type poller                 the loop's poller state (Loop.p)
//	type connPlat               a connection's platform state (Conn.p)
//	const slotLimit             connections per loop (table.go)
//	chooseIOEngine(want IOEngine) (IOEngine, string, error)
//	        the engine New runs for want, and why a better one was not
//	        taken (ChooseIOEngine)
//	(l *Loop) openPoller() error
//	        make the poller and the wakeup, and bind the listener where the
//	        loop has one; on error, close what was made
//	(l *Loop) poll(timeout time.Duration) (events int, err error)
//	        wait up to timeout (negative: without limit; l.rawWait says
//	        how) and handle what is ready: new sockets (Loop.accepted: the
//	        admission caps with the peer's address first (peer.go),
//	        refused ones closed at once with a reset; admitted ones get
//	        TCP_NODELAY and keepalive (Config.KeepAlive), a Conn with the
//	        peer, and Loop.opened, or Loop.unadmit if that fails), input
//	        (Loop.read or Loop.deliver), writability (at most writeSlice
//	        bytes of the write queue per event or send), wakeups
//	        (Loop.handleWake); a non-nil error ends the loop
//	(l *Loop) wakePoller() error
//	        make a blocked poll return; any goroutine, never after closePosts
//	(l *Loop) pauseAccepting()   stop taking new sockets until resumeAccepting
//	(l *Loop) resumeAccepting()
//	(l *Loop) stopAccepting()    close the listener for good
//	(l *Loop) settle()           once every connection is closed, wait
//	                             (bounded) for I/O the kernel still holds
//	(l *Loop) closePoller()      close the loop's descriptors (not running)
//	(c *Conn) recv(p []byte) (int, error)
//	        one non-blocking read: n > 0 bytes, 0 at EOF, errWouldBlock
//	(c *Conn) send(bufs [][]byte) (int, error)
//	        one non-blocking gather write; 0 and nil when it would block. An
//	        engine that sends asynchronously may take every byte and answer
//	        later: it keeps what bufs point into valid (or copies it) until
//	        then, and queues an unsent tail itself
//	(c *Conn) sending() bool     such a send has bytes the kernel has not
//	                             answered: new output waits behind it
//	(c *Conn) startOutput()      drain the write queue when the socket allows;
//	                             Conn.wrote for every write that moved bytes
//	(c *Conn) inFlight() int     queue bytes an asynchronous send holds
//	(c *Conn) unsent() (int, bool)  bytes handed to the kernel, not yet acked
//	(c *Conn) acked() (uint64, bool)  bytes the peer acknowledged so far;
//	                             false where the platform cannot tell
//	(c *Conn) stopInput()        the peer sent EOF: stop watching input
//	(c *Conn) shutWrite() error  send FIN
//	(c *Conn) closeSocket()      unregister and close the socket; retire
//	                             c's slot once the kernel holds nothing of c
//	(c *Conn) remoteAddr() net.Addr
//	nameThread(name string) error, threadID() int, onMainThread() bool
//	FileLimit() int
//
// Two engines on one platform. Linux has epoll (epoll_linux.go) and
// io_uring (uring_*_linux.go). Rather than a switch in every hook, the
// Linux poller holds the chosen engine as a small internal interface
// (linuxEngine in poll_linux.go, implemented by *epollEngine and
// *uringEngine), and each Linux hook dispatches through it once; what the
// engines share (the listener, the wakeup eventfd, read(2) and writev(2),
// shutdown, addresses) is plain code beside them. The indirect call costs
// about 4 ns where a switch costs 1 (BenchmarkHookDispatch, on our 2-CPU
// machine): an echoed message makes one (send) against some 600 ns of
// work, and the hooks Conn.Queued calls several times per message
// (sending, inFlight) read connPlat, which only io_uring sets, without
// dispatching.

// control bits posted to a loop outside its inbox, so that a full inbox can
// never lose a shutdown.
const (
	ctlShutdown uint32 = 1 << iota
	ctlAbort
)

// tickInterval is how often a loop looks at deadlines while any are set.
const tickInterval = 250 * time.Millisecond

// postsClosed is added to Loop.posters when the loop stops taking wakeups,
// and to Loop.pushers when its inbox stops taking tasks: goroutines that
// then see a negative count stay away from the poller, or the inbox.
const postsClosed = math.MinInt32 / 2

// wakeWindowHook, set only by a test, runs in handleWake between clearing
// wakePending and reading the control word: it holds the loop in the window
// where a post must still end in a wakeup (TestShutdownPostedInWakeWindow).
var wakeWindowHook atomic.Pointer[func(*Loop)]

// maxIov bounds the buffers gathered for one connection's write (IOV_MAX on
// Linux; Windows has no such limit, the bound keeps the array small).
const maxIov = 1024

// writeSlice bounds the queued bytes a loop writes for one connection per
// writability event, so that draining a long queue takes turns with the
// other connections of the loop instead of holding the loop.
const writeSlice = 256 << 10

// Loop is one event loop. Its methods other than Post, SetBatch, Stats,
// Index, Spec and TID must only be called on the loop's own thread (from
// Handler callbacks).
type Loop struct {
	stats Counters // first: 64-bit aligned for its atomics on 32-bit platforms
	e     *Engine
	h     Handler
	dr    DirectReader // h, if it is one
	log   *slog.Logger
	idx   int
	spec  LoopSpec
	inbox *ring.MPMC[Task]

	wakePending atomic.Bool
	ctl         atomic.Uint32
	posters     atomic.Int32 // goroutines inside signal; postsClosed once closed
	pushers     atomic.Int32 // goroutines inside Post; postsClosed once the inbox is shut
	batch       atomic.Int32 // events per wait; SetBatch changes it
	closed      atomic.Bool
	tid         atomic.Int32
	rawWait     bool // block without the scheduler (Config.Wait), set by Start

	// Loop-thread state.
	conns       []*Conn              // the connection table, by slot (table.go)
	freeSlots   []uint32             // free slots of conns
	ioSpare     stack.Spares[connIO] // connIOs kept for reuse (conn.go)
	cache       *hugepage.Cache      // the loop's front of its node's pool; nil: Go heap
	poolMax     int                  // the pool's largest class
	classCount  [32]int32            // the pool's buffers per class, by log2 of the size
	classOf     [32]uint8            // log2 of the class serving a size of 2^k
	rbuf        []byte               // read buffer: headroom, then room for a read (at least Config.ReadBufferSize)
	rbufH       hugepage.Buffer      // rbuf's pool buffer; zero for heap memory
	rbufShared  bool                 // a handler retained rbuf: read into a new one
	regions     []*region            // freed regions kept for reuse (memory.go)
	heapSpare   [17][][]byte         // freed heap buffers kept for reuse, by log2 of the size (up to 64 KiB)
	spareBytes  int                  // the memory both hold
	spareSince  int64                // when a heap buffer was last kept
	regionLog   int64                // when a region failure was last logged
	pending     *Conn                // connection whose writes sit in iov
	iov         [maxIov][]byte       // the pending writes, sent with one gather write
	niov        int
	iovBytes    int
	scratch     []byte        // frame headers for pending writes
	scrOff      int           // used part of scratch
	timed       []*Conn       // connections with a deadline or queued output
	timedSpare  []*Conn       // sweep's second buffer
	deferred    []deferredBuf // freed after the pending writes are flushed (Conn.FreeAfterFlush)
	task        []byte        // the Data of the task being run (Handler.OnTask)
	stopping    bool          // shutdown began: exit once no connection is left
	now         int64         // unix nanoseconds at the start of the turn
	acceptPause int64         // accepting paused until then (out of descriptors); 0: not
	acceptLog   int64         // when the last accept failure was logged
	p           poller
}

func newLoop(e *Engine, idx int, spec LoopSpec) (*Loop, error) {
	l := &Loop{
		e: e, h: e.h, log: e.log, idx: idx, spec: spec,
		inbox:   ring.NewMPMC[Task](e.cfg.Ring),
		scratch: make([]byte, 16<<10),
		ioSpare: stack.Spares[connIO]{Max: ioSpares},
	}
	l.dr, _ = e.h.(DirectReader)
	l.batch.Store(int32(e.cfg.Batch))
	if err := l.openPoller(); err != nil {
		return nil, err
	}
	if spec.Pool != nil {
		l.cache = spec.Pool.NewCache()
		l.poolMax = spec.Pool.MaxSize()
		classes := spec.Pool.Stats().Classes
		for _, cl := range classes {
			l.classCount[bits.Len(uint(cl.Size-1))] = int32(cl.Capacity)
		}
		for k := range l.classOf {
			for _, cl := range classes {
				if cl.Size >= 1<<k {
					l.classOf[k] = uint8(bits.Len(uint(cl.Size - 1)))
					break
				}
			}
		}
	}
	l.newReadBuffer()
	return l, nil
}

// run is the loop: wait, handle, look at deadlines once a tick, until a
// shutdown has closed the last connection.
func (l *Loop) run() {
	l.pin()
	defer l.finish()
	l.now = time.Now().UnixNano()
	nextTick := l.now + int64(tickInterval)
	for {
		timeout := time.Duration(-1)
		if len(l.timed) > 0 || l.acceptPause != 0 || l.spareBytes > 0 {
			timeout = tickInterval
		}
		n, err := l.poll(timeout)
		if err != nil {
			l.log.Error("reactor: poll", "loop", l.idx, "err", err)
			return
		}
		count(&l.stats.Wakeups, 1)
		count(&l.stats.Events, uint64(n))
		if l.now >= nextTick {
			nextTick = l.now + int64(tickInterval)
			l.sweep()
			l.trimSpare(false)
			if l.acceptPause != 0 && l.now >= l.acceptPause {
				l.acceptPause = 0
				l.resumeAccepting()
			}
		}
		if l.stopping && atomic.LoadInt64(&l.stats.Conns) == 0 {
			return
		}
	}
}

// pin locks the goroutine to its thread, names the thread reactor-N (ps -L,
// /proc/PID/task/*/comm, debuggers) and pins it to spec.CPU. The thread is
// never unlocked: when run returns the thread exits with it. TID is
// published last: once it is non-zero the thread is named and pinned.
func (l *Loop) pin() {
	runtime.LockOSThread()
	defer func() { l.tid.Store(int32(threadID())) }()
	if err := nameThread(fmt.Sprintf("reactor-%d", l.idx)); err != nil {
		l.log.Debug("reactor: name thread", "loop", l.idx, "err", err)
	}
	if l.spec.CPU < 0 {
		return
	}
	if err := cnuma.PinThread(l.spec.CPU); err != nil {
		l.log.Warn("reactor: pin thread", "loop", l.idx, "cpu", l.spec.CPU, "err", err)
	}
}

// finish closes what is left and releases the loop once run is done.
func (l *Loop) finish() {
	l.stopping = true
	l.closeInbox()
	l.closeAll(ErrShutdown)
	l.stopAccepting()
	l.closePosts()
	l.settle()
	l.closePoller()
	l.freeMemory()
	// Drop tasks nobody will run (the loop ended without a shutdown: a
	// poller error); their data is garbage once unreferenced.
	for {
		if _, ok := l.inbox.Pop(); !ok {
			break
		}
		count(&l.stats.TasksDropped, 1)
	}
}

// Post hands t to the loop from any goroutine. It never blocks: a full inbox
// returns ErrInboxFull; once the loop has begun its shutdown (or stopped) it
// returns ErrClosed. A task Post accepted runs before the loop offers its
// connections to Handler.OnShutdown: a shutdown closes the inbox, waits for
// the Posts under way, and runs what they left.
func (l *Loop) Post(t Task) error {
	if l.pushers.Add(1) < 0 { // the inbox is shut
		l.pushers.Add(-1)
		return ErrClosed
	}
	ok := l.inbox.Push(t)
	l.pushers.Add(-1)
	if !ok {
		return ErrInboxFull
	}
	l.signal()
	return nil
}

// closeInbox makes Post fail from now on and waits for the Posts already
// under way (a push and nothing else: never long), so that every task Post
// accepted is in the inbox. Loop thread, or a loop that never ran.
func (l *Loop) closeInbox() {
	if l.pushers.Load() < 0 {
		return
	}
	if l.pushers.Add(postsClosed) != postsClosed {
		for l.pushers.Load() != postsClosed {
			runtime.Gosched()
		}
	}
}

// signal wakes the loop unless a wakeup is already on its way. The loop
// clears wakePending before it reads its control word and drains the
// inbox, so anything posted after that sees false here and writes a new
// wakeup (runtime netpollBreak and gnet Poller.Trigger use the same guard).
func (l *Loop) signal() {
	if !l.wakePending.CompareAndSwap(false, true) {
		return
	}
	if l.posters.Add(1) < 0 { // the loop is gone: its poller may be closed
		l.posters.Add(-1)
		return
	}
	err := l.wakePoller()
	l.posters.Add(-1)
	if err != nil {
		l.log.Error("reactor: wake loop", "loop", l.idx, "err", err)
	}
}

// closePosts makes Post fail and signal stay away from the poller from now
// on, and waits for signals already inside wakePoller, so that the poller
// can be closed.
func (l *Loop) closePosts() {
	l.closed.Store(true)
	if l.posters.Load() < 0 {
		return
	}
	if l.posters.Add(postsClosed) != postsClosed {
		for l.posters.Load() != postsClosed {
			runtime.Gosched()
		}
	}
}

func (l *Loop) postControl(bit uint32) {
	l.ctl.Or(bit)
	l.signal()
}

// SetBatch changes how many events the loop takes per wait, from its next
// turn on. Safe from any goroutine; a control word, so a full inbox cannot
// lose it.
func (l *Loop) SetBatch(n int) {
	if n < 1 {
		n = 1
	}
	l.batch.Store(int32(n))
	l.signal()
}

// handleWake acts on a wakeup: control words first, then the inbox. A
// shutdown shuts the inbox and runs every task posted before it, then
// begins (so that a message a Send accepted goes out before the close that
// the shutdown sends); an abort closes what is left after the tasks. The
// platform's poll calls it once the wakeup is consumed.
//
// wakePending is cleared before the control word is read: a post that lands
// between the two is seen by the read and also writes a wakeup (one spare
// turn). In the other order a post landing between the read and the clear
// would find wakePending still set, write no wakeup, and wait in the
// control word until something else woke the loop.
func (l *Loop) handleWake() {
	l.wakePending.Store(false)
	if h := wakeWindowHook.Load(); h != nil {
		(*h)(l)
	}
	ctl := l.ctl.Swap(0)
	if ctl&ctlShutdown != 0 && !l.stopping {
		l.closeInbox()
		l.drainInbox(l.inbox.Cap()) // all of it: the shut inbox takes no more
		l.beginShutdown()
	}
	if !l.drainInbox(l.inbox.Cap()) {
		l.signal() // the rest next turn, after the sockets had theirs
	}
	if ctl&ctlAbort != 0 {
		l.e.forced.Add(int64(l.closeAll(ErrShutdown)))
	}
}

// drainInbox runs up to max queued tasks and reports whether it emptied the
// inbox. The bound (one inbox-full per turn) keeps goroutines that post
// without pause, or a task that posts another, from holding the loop away
// from its sockets and its control word. A task for a connection that
// closed since it was posted is dropped (counted in TasksDropped).
func (l *Loop) drainInbox(max int) bool {
	for range max {
		t, ok := l.inbox.Pop()
		if !ok {
			return true
		}
		switch {
		case t.Fn != nil:
			t.Fn()
		case t.Conn != nil && t.Conn.loop == l && t.Conn.gen == t.Gen && t.Conn.flags&fClosed == 0:
			l.task = t.Data
			l.h.OnTask(t.Conn, &t)
			t.Conn.Flush()
			l.task = nil
		default:
			count(&l.stats.TasksDropped, 1)
		}
	}
	return l.inbox.Len() == 0
}

// beginShutdown stops accepting, then hands every connection to
// shutdownConn.
func (l *Loop) beginShutdown() {
	l.stopping = true
	l.stopAccepting()
	for _, c := range l.conns {
		if c != nil {
			l.shutdownConn(c)
		}
	}
}

// shutdownConn reads what c had already sent (bounded, so that a flooding
// peer cannot hold the shutdown), so that it is handled rather than lost,
// then offers c to Handler.OnShutdown.
func (l *Loop) shutdownConn(c *Conn) {
	if c.flags&(fClosed|fWriteShut) != 0 {
		return
	}
	for i := 0; i < 64 && c.flags&fClosed == 0; i++ {
		if !l.read(c) {
			break
		}
	}
	if c.flags&(fClosed|fClosing|fWriteShut) == 0 {
		l.h.OnShutdown(c)
		c.Flush()
	}
}

// closeAll closes every connection of the loop and says how many were
// open.
func (l *Loop) closeAll(err error) int {
	n := 0
	for _, c := range l.conns {
		if c != nil && c.flags&fClosed == 0 {
			c.closeNow(err)
			n++
		}
	}
	return n
}

// opened registers c, which the platform has made with the peer admit
// returned and put in l.conns, with its peer and the handler.
func (l *Loop) opened(c *Conn) {
	atomic.AddInt64(&l.stats.Conns, 1)
	count(&l.stats.Accepted, 1)
	if c.peer != nil {
		c.peer.join(&l.e.peers, c)
	}
	l.h.OnOpen(c)
	c.Flush()
}

// acceptFailed pauses accepting for a tick when the system is out of
// descriptors or memory, instead of spinning on a listener that stays
// ready; it logs at most one line per 5 s while that lasts.
func (l *Loop) acceptFailed(err error) {
	count(&l.stats.AcceptFails, 1)
	if l.now-l.acceptLog >= int64(5*time.Second) {
		l.log.Warn("reactor: accept failing, pausing accepts", "loop", l.idx, "err", err,
			"pause", tickInterval, "failures", atomic.LoadUint64(&l.stats.AcceptFails))
		l.acceptLog = l.now
	}
	if l.acceptPause == 0 {
		l.pauseAccepting()
	}
	l.acceptPause = l.now + int64(tickInterval)
}

// Now is the time at the start of the loop's current turn; cheaper than
// time.Now for per-message bookkeeping.
func (l *Loop) Now() time.Time { return time.Unix(0, l.now) }

// NowNano is Now in Unix nanoseconds.
func (l *Loop) NowNano() int64 { return l.now }

// track adds c to the deadline list.
func (l *Loop) track(c *Conn) {
	if c.flags&fTimed == 0 {
		c.flags |= fTimed
		l.timed = append(l.timed, c)
	}
}

// sweep acts on deadlines that passed and on stalled writers: a closing
// connection's linger deadline closes it, any other deadline goes to
// Handler.OnDeadline, and output queued without moving for the write stall
// timeout evicts its connection. The list is rebuilt into the spare slice
// so that SetDeadline from the handler appends safely.
func (l *Loop) sweep() {
	old := l.timed
	l.timed = l.timedSpare[:0]
	for _, c := range old {
		c.flags &^= fTimed
		if c.flags&fClosed != 0 {
			continue
		}
		c.kernelMoved()
		if c.stalled(l.now) {
			c.evict(ErrStalled)
			continue
		}
		if c.deadline != 0 && l.now >= c.deadline {
			c.deadline = 0
			c.expired()
		}
		if c.flags&fClosed == 0 && (c.deadline != 0 || c.io != nil && c.io.wstall != 0) {
			l.track(c)
		}
	}
	clear(old)
	l.timedSpare = old[:0]
	// A burst of handshakes (each has a deadline) leaves both lists as
	// long as the burst: once few deadlines are left, let the GC have the
	// room (8 bytes per connection of the burst, twice).
	if n := len(l.timed); cap(l.timedSpare) > 1024 && cap(l.timedSpare) > 8*n {
		l.timed = append(make([]*Conn, 0, 2*n), l.timed...)
		l.timedSpare = nil
	}
}

// Each calls fn for every open connection of the loop (to apply a new
// setting to the connections already open, say). Loop thread only; fn may
// close the connection it is given.
func (l *Loop) Each(fn func(c *Conn)) {
	for _, c := range l.conns {
		if c != nil && c.flags&fClosed == 0 {
			fn(c)
		}
	}
}

// Index is the loop's position in the engine.
func (l *Loop) Index() int { return l.idx }

// Spec is the loop's placement.
func (l *Loop) Spec() LoopSpec { return l.spec }

// TID is the OS thread id the loop runs on, 0 before it started.
func (l *Loop) TID() int { return int(l.tid.Load()) }
