package ws

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/reactor"
	"github.com/hioload-ws/hioload-ws/topology"
	"github.com/hioload-ws/hioload-ws/ws/internal/deflate"
)

// IOEngine names the kernel interface the event loops use
// (Config.IOEngine; LoopStats.IOEngine says which one runs).
type IOEngine = reactor.IOEngine

// The engines Config.IOEngine may name.
const (
	IOAuto  = reactor.IOAuto
	IOEpoll = reactor.IOEpoll
	IOURing = reactor.IOURing
)

// ChooseIOEngine says which engine NewServer would run for want on this
// machine, and why io_uring was not taken when it was not (the line
// NewServer logs then). It probes the kernel.
func ChooseIOEngine(want IOEngine) (got IOEngine, why string, err error) {
	return reactor.ChooseIOEngine(want)
}

// Config is the server's configuration. Start from DefaultConfig.
type Config struct {
	ListenAddr string // TCP address, e.g. ":9001"; ":0" or "127.0.0.1:0" picks a port
	BatchSize  int    // events per epoll_wait, 1..4096 (io_uring: the completions BatchWait waits for)
	// BatchWait lets an idle io_uring loop wait up to this long for
	// BatchSize events before it handles fewer (Linux 6.12): fewer wakeups
	// under moderate load, each message delayed at most this much. 0: wake
	// for every event (epoll always does).
	BatchWait   time.Duration
	ReactorRing int // inbox capacity per loop, 2..1048576 (rounded up to a power of two)
	Workers     int // event loops; 0 = one per allowed CPU of the chosen node(s)
	NUMANode    int // -1 = auto, else the node whose CPUs and memory to use

	// ReusePort lets other processes listen on ListenAddr too (Linux
	// SO_REUSEPORT: the kernel spreads connections over every listener of
	// the same user), for deliberate multi-process setups. Without it
	// NewServer refuses an address another socket already listens on, with
	// ErrAddrInUse. Not supported on Windows.
	ReusePort bool

	// IOEngine is the kernel interface the loops use: IOAuto ("" too) is
	// io_uring where the kernel has what the engine needs and epoll
	// elsewhere, logging why (the environment variable
	// HIOLOAD_ENGINE=epoll|uring overrides auto); IOEpoll or IOURing
	// forces one (NewServer fails if the kernel lacks io_uring). Windows
	// uses IOCP.
	IOEngine IOEngine

	ReadBufferSize   int           // most bytes one read takes, 4 KiB..64 MiB (each loop's buffer has 4 KiB more in front, for partial frames)
	MaxFrameSize     int64         // larger frames are refused with 1009 before their payload is read
	MaxMessageSize   int64         // larger messages (all fragments) are refused with 1009
	MaxHandshakeSize int           // larger upgrade requests get HTTP 431
	MaxWriteQueue    int           // bytes queued for a client that is not reading before it gets 1008
	HandshakeTimeout time.Duration // a connection must complete its upgrade within this
	ShutdownTimeout  time.Duration // Shutdown waits this long for clients to answer 1001
	LingerTimeout    time.Duration // after a close, wait this long for the client's FIN

	// MaxConns bounds open TCP connections, counted from accept: past it a
	// new connection is reset at once, before its handshake is read
	// (Stats.Refused). 0 means the open-file limit less 64.
	MaxConns int
	// MaxConnsPerIP bounds open TCP connections from one client address
	// (an IPv6 client's /64), counted and refused like MaxConns. 0 means
	// no per-address limit (the right setting behind a load balancer).
	MaxConnsPerIP int
	// MaxHandshakes bounds the connections still handshaking (accepted,
	// upgrade not yet done), and MaxHandshakesPerIP those of one address:
	// past them a new connection is reset at once. A client holding
	// silent connections uses up its own address's share, not everyone's.
	// 0 means no cap (set MaxHandshakesPerIP to 0 behind a load
	// balancer, where every client has its address).
	MaxHandshakes      int
	MaxHandshakesPerIP int
	// TCPKeepAlive turns TCP keepalive on for accepted connections: a
	// probe after this much silence and then every this much, so that
	// clients that vanished without closing are dropped (as net/http
	// does, with 15 s). 0 turns it off.
	TCPKeepAlive time.Duration
	// WriteStallTimeout closes a connection whose client took none of its
	// queued replies (or of a large reply the kernel's send buffer holds)
	// for this long: close 1008 queued and the connection
	// dropped (the client is not reading, so it will rarely see the
	// frame). 0 disables it. Reloadable.
	WriteStallTimeout time.Duration
	// ReleaseMemoryEvery lets the server hand unused Go heap memory back to
	// the system (runtime/debug.FreeOSMemory) at most this often, when
	// 64 MiB or more of it is free after a burst of large messages. 0
	// leaves that to the Go runtime's scavenger.
	ReleaseMemoryEvery time.Duration
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
	// MaxHeapBytes bounds the buffer memory the loops may hold beyond their
	// pools: Go heap buffers, and the memory large messages and write
	// queues hold in their reserved regions, charged as bytes arrive
	// (0: no bound). When it runs short, a connection (or client address)
	// holding more than its share is refused with close 1013, and for
	// anyone else the connections holding the most are closed with 1013
	// to make room (SECURITY.md: "Memory").
	MaxHeapBytes int64

	// Compression is permessage-deflate (RFC 7692); off by default.
	Compression Compression
}

// Compression configures permessage-deflate (RFC 7692). Every browser
// offers it on every connection; the server accepts only when Enabled. It
// is off by default because inflating and compressing cost CPU on every
// message, several times what an uncompressed echo costs
// (docs/BENCHMARKS.md), on a server chosen for messages per core and
// latency: turn it on where bandwidth is the bill (JSON feeds and chat
// text shrink several times).
//
// What each choice costs per connection (README, "Compression"; measured
// in docs/BENCHMARKS.md): a negotiated connection holds 120 bytes of
// state, never a compressor or an inflater, which are the loop's; server
// context takeover adds nothing, since HistorySlots writers per loop keep
// the history of the connections that sent last; client context takeover
// adds a window of 2^ClientWindowBits bytes of buffer memory once the
// client has sent a compressed message.
type Compression struct {
	Enabled bool
	// Level is the deflate level: 1 (fastest, the default) to 9 (smallest).
	// Windows below 32 KiB (ServerWindowBits < 15) compress at the
	// library's fixed level for them.
	Level int
	// ServerContextTakeover lets a reply refer to the earlier replies of
	// its connection (smaller output), unless the client forbids it. The
	// history lives in the loop's HistorySlots compressors, never in an
	// idle connection.
	ServerContextTakeover bool
	// ServerWindowBits bounds the window of replies: 8 (256 bytes) to 15
	// (32 KiB, the default).
	ServerWindowBits int
	// ClientContextTakeover lets the client's messages refer to its earlier
	// ones, which costs the server a window of 2^ClientWindowBits bytes per
	// connection; false (the default) answers every offer with
	// client_no_context_takeover.
	ClientContextTakeover bool
	// ClientWindowBits bounds that window (8..15, default 15) when the
	// client lets the server choose; a client that does not is asked for
	// client_no_context_takeover when this is below 15.
	ClientWindowBits int
	// MinSize: replies shorter than this go uncompressed, as do replies that
	// would not shrink. An echo of a message that arrived compressed is
	// always compressed.
	MinSize int
	// HistorySlots is the number of compressors per loop that keep a
	// connection's history under server context takeover (about 1 MiB of
	// heap each, made on first use).
	HistorySlots int
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
		Compression: Compression{
			Level:                 1,
			ServerContextTakeover: true,
			ServerWindowBits:      15,
			ClientWindowBits:      15,
			MinSize:               64,
			HistorySlots:          8,
		},

		MaxHandshakes:      1024,
		MaxHandshakesPerIP: 64,
		TCPKeepAlive:       15 * time.Second,
		WriteStallTimeout:  10 * time.Second,
		ReleaseMemoryEvery: 10 * time.Second,
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
// Control.Reload.
//
// The metric tags name the gauges package wsmetrics exports for them.
type Limits struct {
	BatchSize        int           `metric:"batch_size" help:"Events taken per wait (reloadable)."`
	MaxFrameSize     int64         `metric:"max_frame_bytes" help:"Largest frame accepted (reloadable)."`
	MaxMessageSize   int64         `metric:"max_message_bytes" help:"Largest message accepted (reloadable)."`
	MaxHandshakeSize int           `metric:"max_handshake_bytes" help:"Largest upgrade request accepted (reloadable)."`
	MaxWriteQueue    int           `metric:"max_write_queue_bytes" help:"Bytes queued for a slow reader before it gets 1008 (reloadable)."`
	HandshakeTimeout time.Duration `metric:"handshake_timeout_seconds" help:"Time allowed to complete the upgrade (reloadable)."`
	IdleTimeout      time.Duration `metric:"idle_timeout_seconds" help:"Silence after which a connection is closed with 1001; 0 = off (reloadable)."`
	// WriteStallTimeout: see Config.
	WriteStallTimeout time.Duration `metric:"write_stall_timeout_seconds" help:"Time a client may take none of its queued replies before it is dropped (1008); 0 = off (reloadable)."`
}

// Limits returns the reloadable part of c.
func (c *Config) Limits() Limits {
	return Limits{
		BatchSize:         c.BatchSize,
		MaxFrameSize:      c.MaxFrameSize,
		MaxMessageSize:    c.MaxMessageSize,
		MaxHandshakeSize:  c.MaxHandshakeSize,
		MaxWriteQueue:     c.MaxWriteQueue,
		HandshakeTimeout:  c.HandshakeTimeout,
		IdleTimeout:       c.IdleTimeout,
		WriteStallTimeout: c.WriteStallTimeout,
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
	case l.WriteStallTimeout < 0 || l.WriteStallTimeout > 0 && l.WriteStallTimeout < time.Second:
		return fmt.Errorf("ws: write stall timeout %s: want 0 (off) or at least 1s", l.WriteStallTimeout)
	}
	return nil
}

// maxRing bounds ReactorRing: a slot is about 64 bytes, so a loop's inbox
// takes at most 64 MiB.
const maxRing = 1 << 20

// Validate reports the first setting that cannot work, naming its valid
// range.
func (c *Config) Validate() error {
	lim := c.Limits()
	if err := lim.Validate(); err != nil {
		return err
	}
	switch {
	case c.IOEngine != "" && c.IOEngine != IOAuto && c.IOEngine != IOEpoll && c.IOEngine != IOURing:
		return fmt.Errorf("ws: io engine %q: want auto, epoll or uring", c.IOEngine)
	case c.ReactorRing < 2 || c.ReactorRing > maxRing:
		return fmt.Errorf("ws: ring capacity %d: want 2..%d", c.ReactorRing, maxRing)
	case c.Workers < 0:
		return fmt.Errorf("ws: workers %d: want 0 (auto) or more", c.Workers)
	case c.NUMANode < -1:
		return fmt.Errorf("ws: NUMA node %d: want -1 (auto) or a node number", c.NUMANode)
	case c.ReadBufferSize < reactor.MinReadBuffer || c.ReadBufferSize > reactor.MaxReadBuffer:
		return fmt.Errorf("ws: read buffer %d bytes: want %d..%d", c.ReadBufferSize, reactor.MinReadBuffer, reactor.MaxReadBuffer)
	case c.BatchWait < 0 || c.BatchWait > time.Second:
		return fmt.Errorf("ws: batch wait %s: want 0 to 1s", c.BatchWait)
	case c.ShutdownTimeout <= 0 || c.LingerTimeout <= 0:
		return errors.New("ws: shutdown and linger timeouts must be positive")
	case c.MaxHeapBytes < 0:
		return errors.New("ws: max heap bytes must be 0 (no bound) or positive")
	case c.MaxConns < 0 || c.MaxConnsPerIP < 0 || c.MaxHandshakes < 0 || c.MaxHandshakesPerIP < 0:
		return errors.New("ws: connection limits must be 0 (default) or positive")
	case c.TCPKeepAlive < 0 || c.TCPKeepAlive > 0 && c.TCPKeepAlive < time.Second:
		return fmt.Errorf("ws: TCP keepalive %s: want 0 (off) or at least 1s", c.TCPKeepAlive)
	case c.ReleaseMemoryEvery < 0:
		return errors.New("ws: release memory interval must be 0 (off) or positive")
	}
	return c.Compression.validate()
}

// validate reports the first compression setting that cannot work; the
// others are not looked at while compression is off.
func (z *Compression) validate() error {
	switch {
	case !z.Enabled:
		return nil
	case z.Level < 1 || z.Level > 9:
		return fmt.Errorf("ws: compression level %d: want 1..9", z.Level)
	case z.ServerWindowBits < 8 || z.ServerWindowBits > 15:
		return fmt.Errorf("ws: server window bits %d: want 8..15", z.ServerWindowBits)
	case z.ClientWindowBits < 8 || z.ClientWindowBits > 15:
		return fmt.Errorf("ws: client window bits %d: want 8..15", z.ClientWindowBits)
	case z.MinSize < 0:
		return fmt.Errorf("ws: compression min size %d: want 0 or more", z.MinSize)
	case z.HistorySlots < 1:
		return fmt.Errorf("ws: compression history slots %d: want at least 1", z.HistorySlots)
	}
	return nil
}

// policy is what the server accepts in a permessage-deflate negotiation.
func (z *Compression) policy() deflate.Policy {
	return deflate.Policy{
		ServerContextTakeover: z.ServerContextTakeover,
		ClientContextTakeover: z.ClientContextTakeover,
		ServerWindowBits:      z.ServerWindowBits,
		ClientWindowBits:      z.ClientWindowBits,
	}
}
