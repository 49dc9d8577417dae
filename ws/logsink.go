package ws

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// LogSink is an io.Writer for log output that never blocks its caller: each
// Write copies its bytes into a bounded buffer, and one goroutine of the
// sink writes them on to the destination. When the destination stalls (a
// pipe nobody reads, Docker's blocking log mode, a stuck journald) and the
// buffer is full, writes are dropped and counted instead of stopping the
// event loops that log. Put it under the handler of Config.Logger:
//
//	sink := ws.NewLogSink(os.Stderr, 0)
//	log := slog.New(slog.NewTextHandler(sink, nil))
//	srv, err := ws.NewServer(cfg, ws.WithLogSink(sink)) // cfg.Logger = log
//
// A log/slog handler writes each record with one Write, so a dropped Write
// is a dropped line: Dropped counts them, and with WithLogSink they show in
// Stats.LogDropped and the hioload_log_dropped_lines_total metric. A write
// that fails at the destination (EPIPE from a vanished reader) counts its
// lines as dropped too; the sink goes on with the next ones.
//
// Write and Dropped may be called from any goroutine.
type LogSink struct {
	w       io.Writer
	max     int
	dropped atomic.Uint64
	wake    chan struct{} // the writer goroutine's doorbell (capacity 1)
	done    chan struct{} // closed when the writer goroutine has returned

	mu      sync.Mutex
	buf     []byte // bytes waiting for the writer
	lines   int    // Writes in buf
	writing bool   // the writer holds a batch
	closing bool
	idle    chan struct{} // closed when buf is empty and nothing is being written; nil while so
}

// DefaultLogSinkSize is the sink's buffer when NewLogSink is given 0.
const DefaultLogSinkSize = 256 << 10

// NewLogSink returns a sink writing to w through a buffer of size bytes
// (0: DefaultLogSinkSize) and starts its writer goroutine; Close stops it.
func NewLogSink(w io.Writer, size int) *LogSink {
	if size <= 0 {
		size = DefaultLogSinkSize
	}
	s := &LogSink{w: w, max: size, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// Write queues a copy of p, or drops it if the buffer has no room for all
// of it (or the sink is closed). It never blocks on the destination and
// never fails: it returns len(p), nil either way.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closing || len(s.buf)+len(p) > s.max {
		s.mu.Unlock()
		s.dropped.Add(1)
		return len(p), nil
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, min(s.max, 4<<10))
	}
	s.buf = append(s.buf, p...) // copy: the caller reuses p when Write returns
	s.lines++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // already rung
	}
	return len(p), nil
}

// Dropped is the number of writes (log lines) dropped so far: the buffer
// was full, the sink closed, or the destination failed them.
func (s *LogSink) Dropped() uint64 { return s.dropped.Load() }

// run writes batches until Close, swapping the buffer so that writers
// append to the other one meanwhile.
func (s *LogSink) run() {
	defer close(s.done)
	var spare []byte
	for {
		s.mu.Lock()
		for len(s.buf) == 0 {
			s.writing = false
			if s.idle != nil {
				close(s.idle)
				s.idle = nil
			}
			if s.closing {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		out, n := s.buf, s.lines
		s.buf, s.lines, s.writing = spare[:0], 0, true
		s.mu.Unlock()
		if _, err := s.w.Write(out); err != nil {
			s.dropped.Add(uint64(n))
		}
		spare = out
	}
}

// Flush waits until everything written before it has reached the
// destination, or ctx ends (then it returns ctx's error: the destination
// is stalled).
func (s *LogSink) Flush(ctx context.Context) error {
	s.mu.Lock()
	if len(s.buf) == 0 && !s.writing {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking writes, writes what is buffered and stops the writer
// goroutine. If ctx ends first (the destination is stalled) it returns
// ctx's error and the goroutine stays until its write returns. Later
// writes are dropped.
func (s *LogSink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WithLogSink reports sink's dropped lines in Stats.LogDropped (and so in
// Control.Stats and the hioload_log_dropped_lines_total metric). sink
// should be what Config.Logger's handler writes to.
func WithLogSink(sink *LogSink) Option {
	return func(s *Server) { s.logSink = sink }
}
