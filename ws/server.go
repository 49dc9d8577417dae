package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/reactor"
)

// Config is the server's configuration. Start from DefaultConfig.
type Config struct {
	ListenAddr  string // TCP address, e.g. ":9001"; ":0" or "127.0.0.1:0" picks a port
	BatchSize   int    // events per epoll_wait
	ReactorRing int    // inbox capacity per loop
	Workers     int    // event loops; 0 = one per allowed CPU of the chosen node(s)
	NUMANode    int    // -1 = auto, else the node whose CPUs and memory to use

	ReadBufferSize   int           // bytes per loop read buffer
	MaxFrameSize     int64         // larger frames are refused with 1009 before their payload is read
	MaxMessageSize   int64         // larger messages (all fragments) are refused with 1009
	MaxHandshakeSize int           // larger upgrade requests get HTTP 431
	MaxWriteQueue    int           // bytes queued for a client that is not reading before it gets 1008
	HandshakeTimeout time.Duration // a connection must complete its upgrade within this
	ShutdownTimeout  time.Duration // Shutdown waits this long for clients to answer 1001
	LingerTimeout    time.Duration // after a close, wait this long for the client's FIN

	Logger *slog.Logger // nil logs nothing
}

// DefaultConfig returns the defaults of the echo command.
func DefaultConfig() Config {
	return Config{
		ListenAddr:       ":9001",
		BatchSize:        32,
		ReactorRing:      1024,
		NUMANode:         -1,
		ReadBufferSize:   128 << 10,
		MaxFrameSize:     16 << 20,
		MaxMessageSize:   16 << 20,
		MaxHandshakeSize: 8 << 10,
		MaxWriteQueue:    32 << 20,
		HandshakeTimeout: 10 * time.Second,
		ShutdownTimeout:  5 * time.Second,
		LingerTimeout:    2 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > 4096:
		return fmt.Errorf("ws: batch size %d: want 1..4096", c.BatchSize)
	case c.ReactorRing < 2:
		return fmt.Errorf("ws: ring capacity %d: want at least 2", c.ReactorRing)
	case c.Workers < 0:
		return fmt.Errorf("ws: workers %d: want 0 (auto) or more", c.Workers)
	case c.NUMANode < -1:
		return fmt.Errorf("ws: NUMA node %d: want -1 (auto) or a node number", c.NUMANode)
	case c.ReadBufferSize < 4096:
		return fmt.Errorf("ws: read buffer %d bytes: want at least 4096", c.ReadBufferSize)
	case c.MaxFrameSize < 125:
		return fmt.Errorf("ws: max frame size %d: want at least 125", c.MaxFrameSize)
	case c.MaxMessageSize < c.MaxFrameSize:
		return fmt.Errorf("ws: max message size %d is below max frame size %d", c.MaxMessageSize, c.MaxFrameSize)
	case c.MaxHandshakeSize < 256:
		return fmt.Errorf("ws: max handshake size %d: want at least 256", c.MaxHandshakeSize)
	case c.MaxWriteQueue < 1024:
		return fmt.Errorf("ws: max write queue %d: want at least 1024", c.MaxWriteQueue)
	case c.HandshakeTimeout <= 0 || c.ShutdownTimeout <= 0 || c.LingerTimeout <= 0:
		return errors.New("ws: handshake, shutdown and linger timeouts must be positive")
	}
	return nil
}

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
	log      *slog.Logger
	engine   *reactor.Engine
	upgrader gws.Upgrader
	loops    []loopState
	mws      []Middleware
	handler  Handler

	mu       sync.Mutex
	running  bool
	runDone  chan struct{}
	shutOnce sync.Once
	shutErr  error
}

// loopState is the server's per-loop part, touched only by its loop thread
// (the counters are atomics so that Stats may read them from anywhere).
type loopState struct {
	ev         Event
	msgsIn     atomic.Uint64
	msgsOut    atomic.Uint64
	bytesIn    atomic.Uint64
	bytesOut   atomic.Uint64
	copied     atomic.Uint64
	upgraded   atomic.Uint64
	rejected   atomic.Uint64
	closesSent atomic.Uint64
	open       atomic.Int64
	_          [64]byte // keep loops' counters off each other's cache lines
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
	for _, o := range opts {
		o(s)
	}
	s.upgrader = gws.Upgrader{ReadBufferSize: cfg.MaxHandshakeSize}
	specs, err := planLoops(cfg.NUMANode, cfg.Workers)
	if err != nil {
		return nil, err
	}
	s.loops = make([]loopState, len(specs))
	s.engine, err = reactor.New(reactor.Config{
		Addr:           cfg.ListenAddr,
		Loops:          specs,
		Batch:          cfg.BatchSize,
		Ring:           cfg.ReactorRing,
		ReadBufferSize: cfg.ReadBufferSize,
		MaxWriteQueue:  cfg.MaxWriteQueue,
		LingerTimeout:  cfg.LingerTimeout,
		Logger:         s.log,
	}, (*engineHandler)(s))
	if err != nil {
		return nil, err
	}
	return s, nil
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
		close(s.runDone)
	})
	return s.shutErr
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Connections int64  // open WebSocket connections
	Accepted    uint64 // TCP connections accepted
	Upgraded    uint64 // handshakes completed
	Rejected    uint64 // handshakes refused with an HTTP error
	MessagesIn  uint64
	MessagesOut uint64
	BytesIn     uint64 // payload bytes of messages received
	BytesOut    uint64 // payload bytes of messages sent
	Reassembled uint64 // payload bytes copied to reassemble split or fragmented messages
	ClosesSent  uint64 // close frames the server initiated
	Loops       []reactor.Stats
}

// Stats returns the server's counters, summed over loops, plus each loop's
// reactor counters.
func (s *Server) Stats() Stats {
	var st Stats
	for i := range s.loops {
		ls := &s.loops[i]
		st.Connections += ls.open.Load()
		st.Upgraded += ls.upgraded.Load()
		st.Rejected += ls.rejected.Load()
		st.MessagesIn += ls.msgsIn.Load()
		st.MessagesOut += ls.msgsOut.Load()
		st.BytesIn += ls.bytesIn.Load()
		st.BytesOut += ls.bytesOut.Load()
		st.Reassembled += ls.copied.Load()
		st.ClosesSent += ls.closesSent.Load()
	}
	for _, l := range s.engine.Loops() {
		rs := l.Stats()
		st.Accepted += rs.Accepted
		st.Loops = append(st.Loops, rs)
	}
	return st
}

// engineHandler is the Server seen by the reactor.
type engineHandler Server

func (h *engineHandler) OnOpen(rc *reactor.Conn) {
	s := (*Server)(h)
	c := &Conn{s: s, rc: rc, ls: &s.loops[rc.Loop().Index()]}
	rc.SetContext(c)
	rc.SetDeadline(rc.Loop().Now().Add(s.cfg.HandshakeTimeout))
}

func (h *engineHandler) OnRead(rc *reactor.Conn, data []byte) int {
	c := rc.Context().(*Conn)
	switch c.state {
	case stateOpen:
		return c.readFrames(data)
	case stateHandshake:
		return c.handshake(data)
	}
	return len(data) // closing: the client's bytes after a close are ignored
}

func (h *engineHandler) OnTask(rc *reactor.Conn, t *reactor.Task) {
	c := rc.Context().(*Conn)
	switch op := OpCode(t.Op); op {
	case OpClose:
		c.Close(StatusCode(t.Code), "")
	default:
		c.WriteMessage(op, t.Data)
	}
}

func (h *engineHandler) OnShutdown(rc *reactor.Conn) {
	c := rc.Context().(*Conn)
	switch c.state {
	case stateOpen:
		c.fail(&CloseError{Code: StatusGoingAway, Reason: "server shutting down"})
	case stateHandshake:
		rc.Abort(reactor.ErrShutdown)
	}
}

func (h *engineHandler) OnClose(rc *reactor.Conn, err error) {
	c, _ := rc.Context().(*Conn)
	rc.SetContext(nil)
	if c == nil {
		return
	}
	c.msg = nil
	if c.opened {
		c.ls.open.Add(-1)
		code := c.closeCode
		if code == 0 {
			code = StatusAbnormalClosure
		}
		ev := &c.ls.ev
		*ev = Event{Kind: CloseEvent, Conn: c, Code: code, Err: err}
		c.s.handler.Handle(ev)
		*ev = Event{}
	}
	c.state = stateClosed
}
