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

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/stat"
	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/topology"
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

	// MaxConns bounds open connections; past it a client completes the
	// handshake and is closed at once with 1013 (try again later). 0 means
	// the open-file limit less 64.
	MaxConns int
	// MaxConnsPerIP bounds connections from one client address; past it the
	// upgrade is refused with HTTP 429. 0 means no per-address limit (the
	// right default behind a load balancer).
	MaxConnsPerIP int
	// AllowedOrigins, when not empty, is the list of Origin header values
	// (e.g. "https://example.com", compared case-insensitively) a browser
	// may connect from; others get HTTP 403. Requests without Origin (not
	// from a browser) are allowed.
	AllowedOrigins []string
	// IdleTimeout closes a connection (1001) that sent nothing for this
	// long; after half of it the server sends a ping, which a live client
	// answers. 0 disables it.
	IdleTimeout time.Duration

	Logger *slog.Logger // nil logs nothing

	// Topology is the machine to plan for; nil discovers this one. Tests
	// and tools pass synthetic topologies here.
	Topology *topology.Topology

	// PoolClasses sizes each node's buffer pool (nil: hugepage's defaults,
	// 75 MiB per node). NoHugepages maps the pools with base pages only.
	// NoPool makes the loops take every buffer from the Go heap instead.
	PoolClasses []hugepage.Class
	NoHugepages bool
	NoPool      bool
	// MaxHeapBytes bounds the Go heap the loops may take for connection
	// buffers once the pools run out (0: no bound). Past it a message that
	// needs memory is refused with close 1013, and a connection whose
	// replies cannot be queued is closed.
	MaxHeapBytes int64
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
		MaxHeapBytes:     1 << 30,
	}
}

// maxConns resolves MaxConns 0 to the open-file limit less 64.
func (c *Config) maxConns() int64 {
	if c.MaxConns > 0 {
		return int64(c.MaxConns)
	}
	if n := reactor.FileLimit(); n > 0 {
		return int64(max(n-64, 64))
	}
	return 1 << 40
}

// Limits are the settings that may change while the server runs; see
// Server.Reload.
type Limits struct {
	BatchSize        int
	MaxFrameSize     int64
	MaxMessageSize   int64
	MaxHandshakeSize int
	MaxWriteQueue    int
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
}

// Limits returns the reloadable part of c.
func (c *Config) Limits() Limits {
	return Limits{
		BatchSize:        c.BatchSize,
		MaxFrameSize:     c.MaxFrameSize,
		MaxMessageSize:   c.MaxMessageSize,
		MaxHandshakeSize: c.MaxHandshakeSize,
		MaxWriteQueue:    c.MaxWriteQueue,
		HandshakeTimeout: c.HandshakeTimeout,
		IdleTimeout:      c.IdleTimeout,
	}
}

// Validate reports the first limit that cannot work.
func (l *Limits) Validate() error {
	switch {
	case l.BatchSize < 1 || l.BatchSize > 4096:
		return fmt.Errorf("ws: batch size %d: want 1..4096", l.BatchSize)
	case l.MaxFrameSize < 125:
		return fmt.Errorf("ws: max frame size %d: want at least 125", l.MaxFrameSize)
	case l.MaxMessageSize < l.MaxFrameSize:
		return fmt.Errorf("ws: max message size %d is below max frame size %d", l.MaxMessageSize, l.MaxFrameSize)
	case l.MaxHandshakeSize < 256:
		return fmt.Errorf("ws: max handshake size %d: want at least 256", l.MaxHandshakeSize)
	case l.MaxWriteQueue < 1024:
		return fmt.Errorf("ws: max write queue %d: want at least 1024", l.MaxWriteQueue)
	case l.HandshakeTimeout <= 0:
		return errors.New("ws: handshake timeout must be positive")
	case l.IdleTimeout < 0 || l.IdleTimeout > 0 && l.IdleTimeout < 2*time.Second:
		return fmt.Errorf("ws: idle timeout %s: want 0 (off) or at least 2s", l.IdleTimeout)
	}
	return nil
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	lim := c.Limits()
	if err := lim.Validate(); err != nil {
		return err
	}
	switch {
	case c.ReactorRing < 2:
		return fmt.Errorf("ws: ring capacity %d: want at least 2", c.ReactorRing)
	case c.Workers < 0:
		return fmt.Errorf("ws: workers %d: want 0 (auto) or more", c.Workers)
	case c.NUMANode < -1:
		return fmt.Errorf("ws: NUMA node %d: want -1 (auto) or a node number", c.NUMANode)
	case c.ReadBufferSize < 4096:
		return fmt.Errorf("ws: read buffer %d bytes: want at least 4096", c.ReadBufferSize)
	case c.ShutdownTimeout <= 0 || c.LingerTimeout <= 0:
		return errors.New("ws: shutdown and linger timeouts must be positive")
	case c.MaxHeapBytes < 0:
		return errors.New("ws: max heap bytes must be 0 (no bound) or positive")
	case c.MaxConns < 0 || c.MaxConnsPerIP < 0:
		return errors.New("ws: connection limits must be 0 (default) or positive")
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
	limits   atomic.Pointer[Limits] // read by the loops per read; swapped by Reload
	log      *slog.Logger
	engine   *reactor.Engine
	upgrader gws.Upgrader // template; each handshake copies it with the current size limit
	loops    []loopState
	mws      []Middleware
	topo     *topology.Topology
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

// loopState is the server's per-loop part, touched only by its loop thread
// (the counters are atomics so that Stats may read them from anywhere).
type loopState struct {
	s          *Server
	ev         Event
	frame      []byte // the whole client frame being handled, when in the read buffer
	frameHdr   int    // its header's length
	msgsIn     stat.Counter
	msgsOut    stat.Counter
	bytesIn    stat.Counter
	bytesOut   stat.Counter
	copied     stat.Counter
	upgraded   stat.Counter
	rejected   stat.Counter
	overCap    stat.Counter
	timeouts   stat.Counter
	closesSent stat.Counter
	closeCodes [closeCodeSlots]stat.Counter // closes the server initiated, by code
	open       stat.Gauge
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
		s.upgrader.OnHeader = s.checkOrigin
	}
	topo, p, specs, err := plan(&cfg)
	if err != nil {
		return nil, err
	}
	s.topo, s.plan = topo, p
	s.newPools(specs)
	s.loops = make([]loopState, len(specs))
	for i := range s.loops {
		s.loops[i].s = s
	}
	s.engine, err = reactor.New(reactor.Config{
		Addr:           cfg.ListenAddr,
		Loops:          specs,
		Batch:          cfg.BatchSize,
		Ring:           cfg.ReactorRing,
		ReadBufferSize: cfg.ReadBufferSize,
		MaxWriteQueue:  cfg.MaxWriteQueue,
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

// Reload replaces the limits that can change at run time. An invalid set
// is refused with an error and changes nothing. New limits apply to frames
// and handshakes that start after Reload returns; the batch size changes at
// each loop's next turn.
func (s *Server) Reload(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	old := s.limits.Swap(&l)
	if old.BatchSize != l.BatchSize {
		for _, lp := range s.engine.Loops() {
			lp.SetBatch(l.BatchSize)
		}
	}
	s.log.Info("ws: limits reloaded", "batch", l.BatchSize, "max_frame", l.MaxFrameSize,
		"max_message", l.MaxMessageSize, "max_handshake", l.MaxHandshakeSize,
		"max_write_queue", l.MaxWriteQueue, "handshake_timeout", l.HandshakeTimeout)
	return nil
}

// CurrentLimits returns the limits in force.
func (s *Server) CurrentLimits() Limits { return *s.limits.Load() }

// UseMiddleware adds middlewares after those already registered. It must be
// called before Run.
func (s *Server) UseMiddleware(mw ...Middleware) { s.mws = append(s.mws, mw...) }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.engine.Addr() }

// Topology is the machine the server planned for.
func (s *Server) Topology() *topology.Topology { return s.topo }

// Plan is where the server's loops run and whose memory they use.
func (s *Server) Plan() *topology.Plan { return s.plan }

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

// Stats is a snapshot of the server's counters.
type Stats struct {
	Connections int64  // open WebSocket connections
	Accepted    uint64 // TCP connections accepted
	Upgraded    uint64 // handshakes completed
	Rejected    uint64 // handshakes refused with an HTTP error
	OverCap     uint64 // connections closed with 1013 because MaxConns was reached
	Timeouts    uint64 // connections dropped by the handshake or idle timeout
	MessagesIn  uint64
	MessagesOut uint64
	BytesIn     uint64 // payload bytes of messages received
	BytesOut    uint64 // payload bytes of messages sent
	Reassembled uint64 // payload bytes copied to reassemble split or fragmented messages
	ClosesSent  uint64 // close frames the server initiated
	HeapBytes   int64  // Go heap held for connection buffers because the pools ran out
	// CloseCodes counts the closes the server initiated by status code
	// (1000-1015; other codes are summed under 0).
	CloseCodes map[StatusCode]uint64
	Loops      []reactor.Stats
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
		st.OverCap += ls.overCap.Load()
		st.Timeouts += ls.timeouts.Load()
		st.MessagesIn += ls.msgsIn.Load()
		st.MessagesOut += ls.msgsOut.Load()
		st.BytesIn += ls.bytesIn.Load()
		st.BytesOut += ls.bytesOut.Load()
		st.Reassembled += ls.copied.Load()
		st.ClosesSent += ls.closesSent.Load()
		for j := range ls.closeCodes {
			if n := ls.closeCodes[j].Load(); n > 0 {
				if st.CloseCodes == nil {
					st.CloseCodes = map[StatusCode]uint64{}
				}
				st.CloseCodes[closeCodeOf(j)] += n
			}
		}
	}
	st.HeapBytes = s.engine.HeapBytes()
	for _, l := range s.engine.Loops() {
		rs := l.Stats()
		st.Accepted += rs.Accepted
		st.Loops = append(st.Loops, rs)
	}
	return st
}

// closeCodeSlots counts codes 1000-1015 one by one and the rest in slot 16.
const closeCodeSlots = 17

func closeCodeSlot(code StatusCode) int {
	if code >= 1000 && code < 1016 {
		return int(code - 1000)
	}
	return 16
}

func closeCodeOf(slot int) StatusCode {
	if slot < 16 {
		return StatusCode(1000 + slot)
	}
	return 0
}

// engineHandler is the Server seen by the reactor.
type engineHandler Server

func (h *engineHandler) OnOpen(rc *reactor.Conn) {
	s := (*Server)(h)
	c := &Conn{rc: rc, ls: &s.loops[rc.Loop().Index()]}
	rc.SetContext(c)
	c.over = s.conns.Add(1) > s.maxConns
	if s.perIP.max > 0 {
		c.ip = s.perIP.add(rc.RemoteAddr())
	}
	rc.SetDeadline(rc.Loop().Now().Add(s.limits.Load().HandshakeTimeout))
}

// OnDeadline drops a handshake that took too long, and keeps an idle
// connection alive with a ping, or closes it with 1001 when it stays silent.
func (h *engineHandler) OnDeadline(rc *reactor.Conn) {
	c := rc.Context().(*Conn)
	switch c.state {
	case stateHandshake:
		c.ls.timeouts.Add(1)
		rc.Abort(reactor.ErrTimeout)
	case stateOpen:
		c.keepalive()
	}
}

func (h *engineHandler) OnRead(rc *reactor.Conn, data []byte) int {
	c := rc.Context().(*Conn)
	c.lastRead, c.pinged = rc.Loop().NowNano(), false
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
	c.msg.Free(rc.Loop())
	c.ls.s.conns.Add(-1)
	if c.ip != nil {
		c.ls.s.perIP.remove(c.ip)
	}
	if c.opened {
		c.ls.open.Add(-1)
		code := c.closeCode
		if code == 0 {
			code = StatusAbnormalClosure
		}
		ev := &c.ls.ev
		*ev = Event{Kind: CloseEvent, Conn: c, Code: code, Err: err}
		c.ls.s.handler.Handle(ev)
		*ev = Event{}
	}
	c.state = stateClosed
}
