package ws

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

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
	cfg      Config
	limits   atomic.Pointer[Limits] // read by the loops per read; swapped by Control.Reload
	log      *slog.Logger
	logSink  *LogSink // nil unless WithLogSink
	engine   *reactor.Engine
	loops    []loopState
	mws      []Middleware
	plan     *topology.Plan
	pools    []*hugepage.Pool
	maxConns int64
	conns    atomic.Int64 // open TCP connections, for MaxConns
	origins  map[string]bool
	perIP    perIPCounter
	handler  Handler
	ctrl     *Control // probes, reload, handler metrics; see GetControl

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
	s.maxConns = cfg.maxConns()
	s.perIP.max = cfg.MaxConnsPerIP
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
	s.newPools(specs)
	s.loops = make([]loopState, len(specs))
	for i := range s.loops {
		s.loops[i].s = s
	}
	s.engine, err = reactor.New(reactor.Config{
		Addr:           cfg.ListenAddr,
		ReusePort:      cfg.ReusePort,
		Loops:          specs,
		Batch:          cfg.BatchSize,
		Ring:           cfg.ReactorRing,
		ReadBufferSize: cfg.ReadBufferSize,
		LingerTimeout:  cfg.LingerTimeout,
		MaxHeapBytes:   cfg.MaxHeapBytes,
		Logger:         s.log,
	}, (*engineHandler)(s))
	if err != nil {
		s.closePools()
		return nil, err
	}
	return s, nil
}

// reload replaces the limits that can change at run time (Control.Reload
// checked them). New limits apply to frames and handshakes that start after
// it returns; the batch size changes at each loop's next turn.
func (s *Server) reload(l Limits) {
	old := s.limits.Swap(&l)
	if old.BatchSize != l.BatchSize {
		for _, lp := range s.engine.Loops() {
			lp.SetBatch(l.BatchSize)
		}
	}
	s.log.Info("ws: limits reloaded", "batch", l.BatchSize, "max_frame", l.MaxFrameSize,
		"max_message", l.MaxMessageSize, "max_handshake", l.MaxHandshakeSize,
		"max_write_queue", l.MaxWriteQueue, "handshake_timeout", l.HandshakeTimeout,
		"idle_timeout", l.IdleTimeout)
}

// UseMiddleware adds middlewares after those already registered. It must be
// called before Run.
func (s *Server) UseMiddleware(mw ...Middleware) { s.mws = append(s.mws, mw...) }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.engine.Addr() }

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// Run serves with h wrapped in the middlewares, and blocks until Shutdown
// has finished. It returns an error if the server is already running.
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
	s.log.Info("ws: listening", "addr", s.Addr().String(), "loops", len(s.loops))
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

// ShutdownContext stops accepting, reads and answers what every client had
// already sent, sends each close 1001 and waits for the clients to answer
// until ctx ends; then it closes the rest. When it returns, every loop,
// socket and buffer is released and Run has returned (or will at once).
func (s *Server) ShutdownContext(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.shutErr = s.engine.Shutdown(ctx)
		if errors.Is(s.shutErr, context.DeadlineExceeded) {
			s.log.Warn("ws: shutdown deadline passed; closed the remaining connections")
			s.shutErr = nil
		}
		if err := s.closePools(); err != nil {
			s.log.Warn("ws: pools kept mapped", "err", err)
		}
		close(s.runDone)
	})
	return s.shutErr
}
