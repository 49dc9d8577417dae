package ws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"
)

// Control is the server's control plane: debug probes, a stats snapshot,
// hot reload of the run-time settings (by API or from a JSON file) and the
// log level. Get it with Server.GetControl; every method is safe from any
// goroutine and none of them touches the per-message path.
type Control struct {
	s *Server

	mu        sync.Mutex // serialises reloads and guards probes
	probes    map[string]func() any
	level     *slog.LevelVar // nil unless WithLogLevel
	baseLevel slog.Level     // the level when WithLogLevel registered it
	handler   *handlerMetrics
}

func newControl(s *Server) *Control {
	return &Control{s: s, probes: map[string]func() any{}}
}

// GetControl returns the server's control plane.
func (s *Server) GetControl() *Control { return s.ctrl }

// WithLogLevel lets Control set the log level at run time (SetLogLevel,
// and "log_level" in a reload file) through v, which should be the
// level of the handler behind Config.Logger. v's level when NewServer runs
// is the base a reload file falls back to when it names no level.
func WithLogLevel(v *slog.LevelVar) Option {
	return func(s *Server) {
		s.ctrl.level = v
		s.ctrl.baseLevel = v.Level()
	}
}

// Names of the built-in entries of Control.Stats; probes may not use them.
const (
	StatsServer   = "server"    // Stats: the server's counters and its loops'
	StatsNodes    = "nodes"     // []NodeStats: the loops' counters summed per NUMA node
	StatsHandler  = "handler"   // HandlerStats: what HandlerMetrics measured
	StatsLimits   = "limits"    // Limits in force
	StatsLogLevel = "log_level" // string, if WithLogLevel registered a level
	StatsPools    = "pools"     // []PoolStats: Server.PoolStats, one pool per node
)

func reservedStatsName(name string) bool {
	switch name {
	case StatsServer, StatsNodes, StatsHandler, StatsLimits, StatsLogLevel, StatsPools:
		return true
	}
	return false
}

// RegisterDebugProbe adds fn as the probe name: Stats (and the
// /debug/probes page) call it and show its value under name. fn runs on
// the caller's goroutine, not a loop thread, so it must read shared state
// safely (atomics). Registering a name again replaces the probe; a nil fn
// removes it. It panics if name is empty or one of the built-in names
// (StatsServer, StatsNodes, StatsHandler, StatsLimits, StatsLogLevel,
// StatsPools).
func (c *Control) RegisterDebugProbe(name string, fn func() any) {
	if name == "" || reservedStatsName(name) {
		panic(fmt.Sprintf("ws: debug probe name %q is reserved", name))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fn == nil {
		delete(c.probes, name)
		return
	}
	c.probes[name] = fn
}

// Probes returns the registered probe names, sorted.
func (c *Control) Probes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.probes))
	for n := range c.probes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stats returns every probe's value by name and the built-in entries:
// StatsServer (Server.Stats, whole, so that fields added to Stats show up
// here as they are), StatsNodes, StatsHandler, StatsLimits, StatsPools
// (page kind, placement and buffers in use per class, per node) and, with
// WithLogLevel, StatsLogLevel. It is meant for humans and debug pages;
// metrics scrapers should use the Prometheus collector.
func (c *Control) Stats() map[string]any {
	c.mu.Lock()
	probes := make(map[string]func() any, len(c.probes))
	for n, fn := range c.probes {
		probes[n] = fn
	}
	c.mu.Unlock()
	out := make(map[string]any, len(probes)+5)
	for n, fn := range probes {
		out[n] = fn() // outside the lock: a probe may take its time
	}
	st := c.s.Stats()
	out[StatsServer] = st
	out[StatsNodes] = nodeStats(st.Loops)
	out[StatsHandler] = c.HandlerStats()
	out[StatsLimits] = c.Limits()
	out[StatsPools] = c.s.PoolStats()
	if c.level != nil {
		out[StatsLogLevel] = c.level.Level().String()
	}
	return out
}

// Reload replaces the server's run-time limits. An invalid set is refused
// with an error and changes nothing. Size limits apply to frames, messages
// and replies from the next one on; the batch size changes at each loop's
// next turn; the handshake, idle and write stall timeouts apply to the
// connections already open too.
func (c *Control) Reload(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.reload(l)
	return nil
}

// Limits returns the limits in force.
func (c *Control) Limits() Limits { return *c.s.limits.Load() }

// SetLogLevel sets the log level registered with WithLogLevel.
func (c *Control) SetLogLevel(l slog.Level) error {
	if c.level == nil {
		return ErrNoLogLevel
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.level.Set(l)
	return nil
}

// LogLevel returns the current log level and whether one was registered
// with WithLogLevel.
func (c *Control) LogLevel() (slog.Level, bool) {
	if c.level == nil {
		return 0, false
	}
	return c.level.Level(), true
}

// ReloadFile reads the JSON reload file at path and applies it: every
// setting it names replaces the current one, and every setting it leaves
// out goes back to the value the server started with (Config, and the
// level WithLogLevel saw), so that deleting a line and reloading undoes
// it. The whole file is checked first (syntax, unknown fields, each value,
// and the resulting Limits); on any error nothing changes. The format:
//
//	{
//	  "batch_size": 64,
//	  "max_frame_size": 1048576,
//	  "max_message_size": 4194304,
//	  "max_handshake_size": 8192,
//	  "max_write_queue": 33554432,
//	  "handshake_timeout": "5s",
//	  "idle_timeout": "2m",
//	  "write_stall_timeout": "10s",
//	  "log_level": "debug"
//	}
func (c *Control) ReloadFile(path string) error {
	data, err := readLimited(path, 1<<20)
	if err != nil {
		return err
	}
	if err := c.reloadJSON(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// CheckReloadFile reads the reload file at path and returns the error
// ReloadFile would refuse it with on a server started with cfg, without a
// server: for a program's check mode and for tests of deployment files.
func CheckReloadFile(path string, cfg Config) error {
	data, err := readLimited(path, 1<<20)
	if err != nil {
		return err
	}
	if _, _, err := parseReload(data, cfg.Limits(), slog.LevelInfo, true); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}

// reloadFile is the JSON reload file; a nil field was left out.
type reloadFile struct {
	BatchSize        *int    `json:"batch_size"`
	MaxFrameSize     *int64  `json:"max_frame_size"`
	MaxMessageSize   *int64  `json:"max_message_size"`
	MaxHandshakeSize *int    `json:"max_handshake_size"`
	MaxWriteQueue    *int    `json:"max_write_queue"`
	HandshakeTimeout *string `json:"handshake_timeout"`   // a Go duration, e.g. "10s"
	IdleTimeout      *string `json:"idle_timeout"`        // a Go duration; "0s" turns it off
	WriteStall       *string `json:"write_stall_timeout"` // a Go duration; "0s" turns it off
	LogLevel         *string `json:"log_level"`           // debug, info, warn, error (slog.Level text)
}

// parseReload checks data and returns the limits and log level it asks
// for, falling back to base and baseLevel for what it leaves out.
func parseReload(data []byte, base Limits, baseLevel slog.Level, haveLevel bool) (Limits, slog.Level, error) {
	var f reloadFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return base, baseLevel, fmt.Errorf("ws: reload file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return base, baseLevel, errors.New("ws: reload file: data after the JSON object")
	}
	l, level := base, baseLevel
	set(&l.BatchSize, f.BatchSize)
	set(&l.MaxFrameSize, f.MaxFrameSize)
	set(&l.MaxMessageSize, f.MaxMessageSize)
	set(&l.MaxHandshakeSize, f.MaxHandshakeSize)
	set(&l.MaxWriteQueue, f.MaxWriteQueue)
	for _, d := range []struct {
		name string
		v    *string
		dst  *time.Duration
	}{
		{"handshake_timeout", f.HandshakeTimeout, &l.HandshakeTimeout},
		{"idle_timeout", f.IdleTimeout, &l.IdleTimeout},
		{"write_stall_timeout", f.WriteStall, &l.WriteStallTimeout},
	} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil {
			return base, baseLevel, fmt.Errorf("ws: reload file: %s: %w", d.name, err)
		}
		*d.dst = v
	}
	if f.LogLevel != nil {
		if !haveLevel {
			return base, baseLevel, fmt.Errorf("ws: reload file: log_level: %w", ErrNoLogLevel)
		}
		if err := level.UnmarshalText([]byte(*f.LogLevel)); err != nil {
			return base, baseLevel, fmt.Errorf("ws: reload file: log_level: %w", err)
		}
	}
	if err := l.Validate(); err != nil {
		return base, baseLevel, err
	}
	return l, level, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (c *Control) reloadJSON(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, level, err := parseReload(data, c.s.cfg.Limits(), c.baseLevel, c.level != nil)
	if err != nil {
		return err
	}
	c.s.reload(l)
	if c.level != nil {
		c.level.Set(level)
	}
	return nil
}
