package reactor

import (
	"context"
	"errors"
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
	// ErrClosed is returned by Post after the loop has stopped.
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
	// ErrAddrInUse is wrapped by New's error when another socket (another
	// process's, even one that shares with SO_REUSEPORT) already listens on
	// the address and Config.ReusePort is off.
	ErrAddrInUse = errors.New("reactor: address in use by another listener")
)

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
	Addr           string     // listen address, e.g. ":9001" or "127.0.0.1:0"
	Loops          []LoopSpec // one entry per event loop; empty means one unpinned loop
	Batch          int        // max events per wait
	Ring           int        // inbox capacity per loop
	ReadBufferSize int        // bytes per loop read buffer (4 KiB of it is headroom for partial frames)
	// MaxHeapBytes bounds the Go heap memory all loops together may take
	// for connection buffers when the pools have none of the size (0: no
	// bound). Past it, work that needs memory is refused: the connection
	// that needed it is closed.
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
	Logger        *slog.Logger
}

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
	if c.ReadBufferSize < 2*headroom {
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
	cfg       Config
	h         Handler
	loops     []*Loop
	addr      net.Addr
	heapBytes atomic.Int64 // Go heap bytes held for connection buffers
	wg        sync.WaitGroup
	mu        sync.Mutex // Start and Shutdown
	started   bool
	stopped   bool
	log       *slog.Logger
}

// New binds the listeners and prepares the loops; Start runs them.
func New(cfg Config, h Handler) (*Engine, error) {
	cfg.setDefaults()
	e := &Engine{cfg: cfg, h: h, log: cfg.Logger}
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

// HeapBytes is the Go heap memory the loops hold for connection buffers
// because their pools had none of the size.
func (e *Engine) HeapBytes() int64 { return e.heapBytes.Load() }

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

// Shutdown stops accepting, offers every open connection to
// Handler.OnShutdown, and waits until the connections are closed. When ctx
// ends first, the remaining connections are closed with ErrShutdown; the
// loops are always gone when Shutdown returns. The error is ctx's if the
// deadline was needed.
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
	return ctx.Err()
}

// closeLoops releases loops that never ran.
func (e *Engine) closeLoops() {
	for _, l := range e.loops {
		l.stopAccepting()
		l.closePosts()
		l.closePoller()
		l.freeMemory()
	}
}
