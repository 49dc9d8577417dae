package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// Errors returned by the reactor.
var (
	// ErrUnsupported is returned by New on platforms without a reactor yet,
	// and for Config.ReusePort on Windows.
	ErrUnsupported = errors.New("reactor: not supported on this platform")
	// ErrInboxFull is returned by Post when the loop's inbox is at capacity.
	ErrInboxFull = errors.New("reactor: loop inbox full")
	// ErrClosed is returned by Post once the loop has begun its shutdown.
	ErrClosed = errors.New("reactor: loop closed")
	// ErrTimeout is passed to OnClose when a connection's deadline expired.
	ErrTimeout = errors.New("reactor: deadline exceeded")
	// ErrShutdown is passed to OnClose for connections still open when the
	// shutdown deadline expired.
	ErrShutdown = errors.New("reactor: closed by shutdown")
	// ErrNoMemory is passed to OnClose when a connection needed buffer
	// memory that neither the pool nor the heap budget had.
	ErrNoMemory = errors.New("reactor: out of buffer memory")
	// ErrPeerClosed is passed to OnClose when the peer closed the connection.
	ErrPeerClosed = errors.New("reactor: connection closed by peer")
	// ErrStalled is passed to OnEvict and OnClose when the peer took none of
	// a connection's queued output for Config.WriteStallTimeout.
	ErrStalled = errors.New("reactor: peer stopped reading")
	// ErrAddrInUse is wrapped by New's error when another socket (another
	// process's, even one that shares with SO_REUSEPORT) already listens on
	// the address and Config.ReusePort is off.
	ErrAddrInUse = errors.New("reactor: address in use by another listener")
)

// ShutdownError is what Shutdown returns when its context ended before the
// connections had closed: the loops then closed Forced of them at once,
// dropping what was queued for them (their handler got ErrShutdown).
// errors.Is(err, context.DeadlineExceeded) holds when a deadline ended it.
type ShutdownError struct {
	Forced int   // connections closed by force
	Err    error // the context's error
}

func (e *ShutdownError) Error() string {
	return fmt.Sprintf("reactor: shutdown: %v: closed %d connections by force", e.Err, e.Forced)
}

func (e *ShutdownError) Unwrap() error { return e.Err }

// Handler is the layer above the reactor (the WebSocket protocol). Every
// method is called on the loop thread that owns the connection, never
// concurrently for one loop.
type Handler interface {
	// OnOpen is called for each accepted connection.
	OnOpen(c *Conn)
	// OnRead is given the bytes available on c: what the last read returned,
	// preceded by what the previous OnRead left unconsumed. It returns how
	// many bytes it consumed; the rest is kept and offered again. The slice
	// is valid until OnRead returns, and replies queued with c.Write that
	// point into it are flushed before the memory is reused.
	OnRead(c *Conn, data []byte) (consumed int)
	// OnTask runs a task posted for c with Loop.Post, if c is still open.
	OnTask(c *Conn, t *Task)
	// OnShutdown is called once per open connection when the engine begins a
	// graceful shutdown, after the last bytes the peer had sent were read.
	OnShutdown(c *Conn)
	// OnDeadline is called when a deadline set with Conn.SetDeadline passed
	// while c is open and not closing. The handler decides: set a new
	// deadline (keepalive), close c, or nothing.
	OnDeadline(c *Conn)
	// OnEvict is called before the reactor closes c for why: ErrStalled
	// (the peer took none of c's queued output for
	// Config.WriteStallTimeout) or ErrNoMemory (c holds more than its
	// share while buffer memory is short; see Config.MaxHeapBytes). The
	// handler may give back memory it holds for c and queue a last
	// message; c is then closed at once, unless it is closing gracefully
	// with nothing queued (the last message went out).
	OnEvict(c *Conn, why error)
	// OnClose is called once when c is closed; c must not be used after it.
	OnClose(c *Conn, err error)
}

// DirectReader is implemented by a Handler that can take a large payload
// straight into its own buffer: the loop then reads the next bytes of c into
// that memory instead of its read buffer, saving the copy. Both methods run
// on the loop thread.
type DirectReader interface {
	// ReadTarget returns memory the next read of c may fill, or nil to read
	// into the loop's read buffer as usual. The loop asks only when it holds
	// no unconsumed bytes of c.
	ReadTarget(c *Conn) []byte
	// OnDirect says that the last read put n bytes at the start of the
	// target ReadTarget returned.
	OnDirect(c *Conn, n int)
}

// Task is work handed to a loop by another goroutine. Exactly one of Fn or
// Conn is set: Fn runs on the loop thread; a Conn task goes to
// Handler.OnTask if the connection (checked by generation) is still open.
// Data and Tag belong to the Handler: the reactor passes them on unread.
// Data must not change once posted: a reply written from it may be sent
// after OnTask returns (the io_uring engine submits a turn's sends
// together), and the loop keeps it until then.
type Task struct {
	Fn   func()
	Conn *Conn
	Gen  uint32
	Tag  uint32
	Data []byte
}

// LoopSpec places one loop.
type LoopSpec struct {
	CPU  int            // CPU to pin the loop's thread to; -1 leaves it unpinned
	Node int            // NUMA node the loop's memory belongs to; -1 if unknown
	Pool *hugepage.Pool // the node's pool for the loop's buffers; nil: Go heap
}

// Config configures an Engine.
type Config struct {
	Addr  string     // listen address, e.g. ":9001" or "127.0.0.1:0"
	Loops []LoopSpec // one entry per event loop; empty means one unpinned loop
	Batch int        // max events per epoll_wait; io_uring: the completions BatchWait waits for
	// BatchWait lets an io_uring loop with nothing to do wait up to this
	// long for Batch events rather than wake for the first
	// (IORING_FEAT_MIN_TIMEOUT, Linux 6.12): fewer wakeups, each event
	// delayed at most this much. 0 wakes for every event; epoll and IOCP
	// always do.
	BatchWait time.Duration
	Ring      int // inbox capacity per loop
	// ReadBufferSize is the most bytes one read takes from a socket:
	// MinReadBuffer to MaxReadBuffer, 0 for 128 KiB. Each loop's read
	// buffer holds that much after 4 KiB of headroom, where a partial
	// frame left by the previous read is put back in front of the next.
	ReadBufferSize int
	// MaxHeapBytes bounds the buffer memory all loops together may hold
	// beyond their pools: Go heap buffers and the memory large buffers
	// (regions) hold (0: no bound). Who is refused and who is evicted
	// when it runs short is memory.go's rule.
	MaxHeapBytes int64
	// ReusePort lets other processes listen on Addr at the same time
	// (Linux SO_REUSEPORT: the kernel spreads connections over every
	// listener of the same user), for deliberate multi-process setups.
	// Without it New refuses an address another socket listens on
	// (ErrAddrInUse). Windows has no such sharing: New fails with
	// ErrUnsupported there.
	ReusePort bool
	// LingerTimeout bounds how long a half-closed connection waits for the
	// peer to close after a graceful close.
	LingerTimeout time.Duration
	// WriteStallTimeout evicts a connection (Handler.OnEvict, ErrStalled)
	// whose queued output the peer has not taken any of for this long, or,
	// once 64 KiB or more went to the kernel, whose output in its send
	// buffer it has not acknowledged any of (0: never).
	// SetWriteStallTimeout changes it.
	WriteStallTimeout time.Duration
	// QueueLimit is the most a connection's write queue may hold, as the
	// upper layer enforces it (0: unknown): a queue that outgrows the pools
	// is reserved for that much at once, so that it is never regrown and
	// copied. SetQueueLimit changes it.
	QueueLimit int
	// KeepAlive turns TCP keepalive on for accepted connections, probing
	// after this much silence and then every this much (0: off), so that
	// peers that vanished without a FIN are found.
	KeepAlive time.Duration
	// Admission caps, checked when a connection is accepted (0: no cap);
	// see peer.go. MaxConns bounds open connections, MaxConnsPerPeer those
	// from one client address, MaxPending those not yet Established, and
	// MaxPendingPerPeer those of one address.
	MaxConns, MaxConnsPerPeer, MaxPending, MaxPendingPerPeer int
	// IOEngine is the kernel interface the loops use: IOAuto (or "") is
	// io_uring where the kernel has it, else epoll (ChooseIOEngine;
	// EngineEnv overrides it), IOEpoll and IOURing force one on Linux.
	// Windows uses IOCP.
	IOEngine IOEngine
	// Wait says how an idle loop blocks in the kernel.
	Wait   Wait
	Logger *slog.Logger
}

// The range of Config.ReadBufferSize.
const (
	MinReadBuffer = 4 << 10
	MaxReadBuffer = 64 << 20
)

// validate refuses settings the engine cannot honour.
func (c *Config) validate() error {
	if c.ReadBufferSize != 0 && (c.ReadBufferSize < MinReadBuffer || c.ReadBufferSize > MaxReadBuffer) {
		return fmt.Errorf("reactor: read buffer size %d: want %d..%d bytes (0: 128 KiB)", c.ReadBufferSize, MinReadBuffer, MaxReadBuffer)
	}
	return nil
}

// Wait says how a loop with nothing to do blocks in the kernel (Linux;
// Windows always waits through the scheduler).
type Wait uint8

const (
	// WaitAuto is WaitRaw when GOMAXPROCS, at Start, leaves at least one P
	// beyond the loops for the rest of the program, and WaitScheduler
	// otherwise.
	WaitAuto Wait = iota
	// WaitRaw blocks with a raw system call: the loop's thread keeps its P
	// while it sleeps, so a wakeup costs no Go scheduler work (no sysmon
	// retake, no hand-off to another thread and back). Each loop then
	// holds a P for good: other goroutines run on the rest.
	WaitRaw
	// WaitScheduler blocks through the Go scheduler, which hands the P to
	// other goroutines while the loop sleeps and back when it wakes.
	WaitScheduler
)

func (c *Config) setDefaults() {
	if len(c.Loops) == 0 {
		c.Loops = []LoopSpec{{CPU: -1, Node: -1}}
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.Ring <= 0 {
		c.Ring = 1024
	}
	if c.ReadBufferSize == 0 {
		c.ReadBufferSize = 128 << 10
	}
	if c.LingerTimeout <= 0 {
		c.LingerTimeout = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Engine is a set of event loops sharing one listen address.
type Engine struct {
	cfg        Config
	io         IOEngine // the engine every loop runs
	h          Handler
	loops      []*Loop
	addr       net.Addr
	mem        atomic.Int64 // buffer bytes held beyond the pools (heap, regions)
	regions    atomic.Int64 // regions mapped
	stall      atomic.Int64 // Config.WriteStallTimeout, as changed since
	queueLimit atomic.Int64 // Config.QueueLimit, as changed since
	open       atomic.Int64 // connections admitted and not yet closed
	pending    atomic.Int64 // of those, not yet Established
	peers      peerTable
	forced     atomic.Int64 // connections a shutdown's abort closed
	wg         sync.WaitGroup
	mu         sync.Mutex // Start and Shutdown
	started    bool
	stopped    bool
	log        *slog.Logger
}

// New binds the listeners and prepares the loops; Start runs them.
func New(cfg Config, h Handler) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	e := &Engine{cfg: cfg, h: h, log: cfg.Logger}
	io, why, err := ChooseIOEngine(cfg.IOEngine)
	if err != nil {
		return nil, err
	}
	if why != "" {
		e.log.Info("reactor: io engine fallback", "io_engine", io, "why", why)
	}
	e.io = io
	e.stall.Store(int64(cfg.WriteStallTimeout))
	e.queueLimit.Store(int64(cfg.QueueLimit))
	for i, spec := range cfg.Loops {
		l, err := newLoop(e, i, spec)
		if err != nil {
			e.closeLoops()
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// IOEngine is the engine the loops run (never IOAuto).
func (e *Engine) IOEngine() IOEngine { return e.io }

// HeapBytes is the buffer memory the loops hold beyond their pools (Go
// heap buffers and the memory behind large buffers, cached ones included):
// what Config.MaxHeapBytes bounds.
func (e *Engine) HeapBytes() int64 { return e.mem.Load() }

// SetQueueLimit changes Config.QueueLimit, for queues reserved from now
// on. Any goroutine.
func (e *Engine) SetQueueLimit(n int) { e.queueLimit.Store(int64(max(n, 0))) }

// SetWriteStallTimeout changes Config.WriteStallTimeout, for connections
// already open too (from their loop's next tick). Any goroutine.
func (e *Engine) SetWriteStallTimeout(d time.Duration) { e.stall.Store(int64(max(d, 0))) }

// Addr is the bound listen address (useful with port 0).
func (e *Engine) Addr() net.Addr { return e.addr }

// Loops returns the engine's loops, in index order.
func (e *Engine) Loops() []*Loop { return e.loops }

// Start runs every loop on its own locked, pinned OS thread. After
// Shutdown it does nothing.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.stopped {
		return
	}
	e.started = true
	raw := e.cfg.Wait == WaitRaw || e.cfg.Wait == WaitAuto && runtime.GOMAXPROCS(0) > len(e.loops)
	for _, l := range e.loops {
		l.rawWait = raw
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			// A loop must not own the main thread: it would rename the
			// process and pin its CPU mask. If this goroutine got the main
			// thread, it keeps it (locked, so nothing else runs there) while
			// the loop runs on another thread.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if !onMainThread() {
				l.run()
				return
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				l.run()
			}()
			<-done
		}()
	}
}

// Wait blocks until every loop has returned.
func (e *Engine) Wait() { e.wg.Wait() }

// Shutdown stops accepting, runs the tasks already posted, offers every
// open connection to Handler.OnShutdown, and waits until the connections
// are closed. When ctx ends first, the remaining connections are closed
// with ErrShutdown and Shutdown returns a *ShutdownError that counts them;
// nil means every connection closed on its own. The loops are always gone
// when Shutdown returns.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	first := !e.stopped
	e.stopped = true
	started := e.started
	e.mu.Unlock()
	if !started {
		if first {
			e.closeLoops()
		}
		return nil
	}
	if first {
		for _, l := range e.loops {
			l.postControl(ctlShutdown)
		}
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, l := range e.loops {
		l.postControl(ctlAbort)
	}
	<-done
	if n := e.forced.Load(); n > 0 {
		return &ShutdownError{Forced: int(n), Err: ctx.Err()}
	}
	return nil // every connection closed just as ctx ended
}

// closeLoops releases loops that never ran.
func (e *Engine) closeLoops() {
	for _, l := range e.loops {
		l.closeInbox()
		l.stopAccepting()
		l.closePosts()
		l.closePoller()
		l.freeMemory()
	}
}
