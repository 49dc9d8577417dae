package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/topology"
)

// Option configures a Server in NewServer.
type Option func(*Server)

// WithMiddleware adds middlewares, outermost first.
func WithMiddleware(mw ...Middleware) Option {
	return func(s *Server) { s.mws = append(s.mws, mw...) }
}

// Server is a WebSocket server over the reactor: one pinned event loop per
// CPU, each with its own listener, running the handler to completion.
type Server struct {
	cfg     Config
	limits  atomic.Pointer[Limits] // read by the loops per read; swapped by Control.Reload
	log     *slog.Logger
	logSink *LogSink // nil unless WithLogSink
	engine  *reactor.Engine
	io      IOEngine // the engine the loops run
	loops   []loopState
	mws     []Middleware
	plan    *topology.Plan
	pools   []*hugepage.Pool
	origins map[string]bool
	handler Handler
	ctrl    *Control // probes, reload, handler metrics; see GetControl

	heapReleases atomic.Uint64 // debug.FreeOSMemory calls (reclaim.go)

	mu       sync.Mutex
	running  bool
	runDone  chan struct{}
	shutOnce sync.Once
	shutErr  error
}

// NewServer validates cfg, plans the loops and binds the listening sockets;
// Run starts serving.
func NewServer(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, runDone: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctrl = newControl(s)
	for _, o := range opts {
		o(s)
	}
	lim := cfg.Limits()
	s.limits.Store(&lim)
	if len(cfg.AllowedOrigins) > 0 {
		s.origins = make(map[string]bool, len(cfg.AllowedOrigins))
		for _, o := range cfg.AllowedOrigins {
			s.origins[strings.ToLower(o)] = true
		}
	}
	specs, err := s.planLoops()
	if err != nil {
		return nil, err
	}
	io, why, err := reactor.ChooseIOEngine(cfg.IOEngine)
	if err != nil {
		return nil, err
	}
	if why != "" {
		s.log.Info("ws: io_uring not used", "io_engine", io, "why", why)
	}
	s.io = io
	s.newPools(specs)
	s.loops = make([]loopState, len(specs))
	for i := range s.loops {
		s.loops[i].s = s
		s.loops[i].readers.Max = readerSpares
	}
	rcfg := reactor.Config{
		Addr:              cfg.ListenAddr,
		ReusePort:         cfg.ReusePort,
		Loops:             specs,
		Batch:             cfg.BatchSize,
		BatchWait:         cfg.BatchWait,
		Ring:              cfg.ReactorRing,
		ReadBufferSize:    cfg.ReadBufferSize,
		LingerTimeout:     cfg.LingerTimeout,
		MaxHeapBytes:      cfg.MaxHeapBytes,
		WriteStallTimeout: cfg.WriteStallTimeout,
		QueueLimit:        queueLimit(&lim),
		KeepAlive:         cfg.TCPKeepAlive,
		IOEngine:          io,
		Logger:            s.log,
	}
	admission(&cfg, &rcfg)
	s.engine, err = reactor.New(rcfg, (*engineHandler)(s))
	if err != nil {
		s.closePools()
		return nil, err
	}
	return s, nil
}

// reload replaces the limits that can change at run time (Control.Reload
// checked them). Size limits apply to frames, messages and replies from
// the next one on; the batch size changes at each loop's next turn; the
// timeouts apply to the connections already open too: each loop re-arms
// their handshake and idle deadlines, and the write stall timeout is read
// at every tick.
func (s *Server) reload(l Limits) {
	old := s.limits.Swap(&l)
	s.engine.SetWriteStallTimeout(l.WriteStallTimeout)
	s.engine.SetQueueLimit(queueLimit(&l))
	for _, lp := range s.engine.Loops() {
		if old.BatchSize != l.BatchSize {
			lp.SetBatch(l.BatchSize)
		}
		if old.HandshakeTimeout != l.HandshakeTimeout || old.IdleTimeout != l.IdleTimeout {
			s.rearm(lp)
		}
	}
	s.log.Info("ws: limits reloaded", "batch", l.BatchSize, "max_frame", l.MaxFrameSize,
		"max_message", l.MaxMessageSize, "max_handshake", l.MaxHandshakeSize,
		"max_write_queue", l.MaxWriteQueue, "handshake_timeout", l.HandshakeTimeout,
		"idle_timeout", l.IdleTimeout, "write_stall_timeout", l.WriteStallTimeout)
}

// queueLimit is the most a write queue can hold under l: what reply lets
// in (MaxWriteQueue) plus the largest reply it may let in past it (a whole
// message's echo, a close frame).
func queueLimit(l *Limits) int { return l.MaxWriteQueue + int(l.MaxMessageSize) + 256 }

// rearm has lp set every open connection's deadline under the limits in
// force when the task runs. A full inbox is retried: a reload must reach
// every connection.
func (s *Server) rearm(lp *reactor.Loop) {
	task := reactor.Task{Fn: func() {
		lim := s.limits.Load()
		lp.Each(func(rc *reactor.Conn) {
			if c, ok := rc.Context().(*Conn); ok {
				c.armDeadline(lim)
			}
		})
	}}
	for try := 0; lp.Post(task) == reactor.ErrInboxFull; try++ {
		if try == 1000 {
			s.log.Warn("ws: reload: loop inbox full for 1s; its connections keep their deadlines", "loop", lp.Index())
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// UseMiddleware adds middlewares after those already registered. It must be
// called before Run.
func (s *Server) UseMiddleware(mw ...Middleware) { s.mws = append(s.mws, mw...) }

// IOEngine is the engine the event loops run (never IOAuto).
func (s *Server) IOEngine() IOEngine { return s.io }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.engine.Addr() }

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// Run serves with h wrapped in the middlewares, and blocks until Shutdown
// has finished. It returns an error if the server is already running, and
// otherwise what Shutdown returned: nil after a graceful shutdown.
func (s *Server) Run(h Handler) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("ws: server already running")
	}
	s.running = true
	s.handler = chain(h, s.mws)
	s.mu.Unlock()
	s.log.Info("ws: plan", "numa", s.plan.NUMA.String(), "nodes", s.plan.Nodes, "loops", len(s.plan.Loops), "reason", s.plan.Reason)
	for _, l := range s.engine.Loops() {
		sp := l.Spec()
		s.log.Info("ws: loop", "loop", l.Index(), "cpu", sp.CPU, "node", sp.Node)
	}
	s.log.Info("ws: listening", "addr", s.Addr().String(), "loops", len(s.loops), "io_engine", s.io)
	if every := s.cfg.ReleaseMemoryEvery; every > 0 {
		go s.reclaimHeap(every, s.runDone)
	}
	s.engine.Start()
	s.engine.Wait()
	<-s.runDone
	return s.shutErr
}

// Shutdown stops the server gracefully within Config.ShutdownTimeout; see
// ShutdownContext.
func (s *Server) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.ShutdownContext(ctx)
}

// ShutdownContext stops accepting, writes every message Send accepted,
// reads and answers what every client had already sent, sends each close
// 1001 and waits for the clients to answer until ctx ends; then it closes
// the rest. When it returns, every loop and socket is released and Run has
// returned (or will at once).
//
// It returns nil when every connection closed gracefully and the buffer
// pools were unmapped. Otherwise the error says what went wrong, and Run
// returns the same: a *ShutdownError when ctx ended first (with the number
// of clients closed without their close handshake), and an error wrapping
// ErrPoolsKept when a pool could not be unmapped (buffers a handler
// retained and never released, wrapped hugepage.ErrInUse); both, joined,
// when both happened. Calling it again returns the first call's result.
func (s *Server) ShutdownContext(ctx context.Context) error {
	s.shutOnce.Do(func() {
		var forced, pools error
		var se *reactor.ShutdownError
		if err := s.engine.Shutdown(ctx); errors.As(err, &se) {
			forced = &ShutdownError{Forced: se.Forced, Err: se.Err}
			s.log.Warn("ws: shutdown deadline passed; closed the remaining connections", "forced", se.Forced)
		} else if err != nil {
			forced = err
		}
		if err := s.closePools(); err != nil {
			pools = fmt.Errorf("%w: %w", ErrPoolsKept, err)
			s.log.Warn("ws: pools kept mapped", "err", err)
		}
		s.shutErr = errors.Join(forced, pools)
		close(s.runDone)
	})
	return s.shutErr
}
