package ws

import (
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// echoOnce sends p on a new connection and returns the echoed payload, or
// the close code if the server closed instead.
func echoOnce(t *testing.T, srv *Server, p []byte) ([]byte, StatusCode) {
	t.Helper()
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	c.Write(t, wstest.Binary(p))
	f := c.Next(t)
	if f.Op == OpClose {
		return nil, StatusCode(binary.BigEndian.Uint16(f.Payload))
	}
	return f.Payload, 0
}

func TestProbeInStats(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 2
	srv := startServer(t, cfg, echoHandler)
	ctrl := srv.GetControl()
	var hits atomic.Int64
	ctrl.RegisterDebugProbe("answer", func() any { return 42 })
	ctrl.RegisterDebugProbe("hits", func() any { return hits.Add(1) })
	ctrl.RegisterDebugProbe("broken", func() any { return func() {} }) // not JSON
	require.Equal(t, []string{"answer", "broken", "hits"}, ctrl.Probes())
	require.Panics(t, func() { ctrl.RegisterDebugProbe(StatsServer, func() any { return 0 }) })
	require.Panics(t, func() { ctrl.RegisterDebugProbe("", func() any { return 0 }) })

	got, _ := echoOnce(t, srv, []byte("x"))
	require.Equal(t, "x", string(got))

	st := ctrl.Stats()
	require.Equal(t, 42, st["answer"])
	require.Equal(t, int64(1), st["hits"])
	server := st[StatsServer].(Stats)
	require.Equal(t, uint64(1), server.MessagesIn)
	require.Len(t, server.Loops, 2)
	nodes := st[StatsNodes].([]NodeStats)
	loops := 0
	for _, n := range nodes {
		loops += n.Loops
	}
	require.Equal(t, 2, loops)
	require.Equal(t, srv.GetControl().Limits(), st[StatsLimits])
	_, haveLevel := st[StatsLogLevel]
	require.False(t, haveLevel, "no WithLogLevel, no log_level entry")

	ctrl.RegisterDebugProbe("answer", nil)
	require.NotContains(t, ctrl.Stats(), "answer")
}

// TestReloadAPI: lowering the message size makes the next big message
// close with 1009; a new batch size shows in Stats; an invalid set is
// refused and changes nothing.
func TestReloadAPI(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	srv := startServer(t, cfg, echoHandler)
	ctrl := srv.GetControl()
	big := make([]byte, 4000)
	got, code := echoOnce(t, srv, big)
	require.Zero(t, code)
	require.Equal(t, big, got)

	l := srv.GetControl().Limits()
	l.MaxFrameSize, l.MaxMessageSize, l.BatchSize = 1000, 1000, 7
	require.NoError(t, ctrl.Reload(l))
	_, code = echoOnce(t, srv, big)
	require.Equal(t, StatusMessageTooBig, code)
	got, _ = echoOnce(t, srv, big[:1000])
	require.Len(t, got, 1000, "at the limit is still fine")
	require.Equal(t, 7, ctrl.Stats()[StatsLimits].(Limits).BatchSize)

	for _, bad := range []func(*Limits){
		func(l *Limits) { l.BatchSize = 0 },
		func(l *Limits) { l.MaxMessageSize = l.MaxFrameSize - 1 },
		func(l *Limits) { l.HandshakeTimeout = 0 },
		func(l *Limits) { l.MaxWriteQueue = 10 },
	} {
		l2 := srv.GetControl().Limits()
		bad(&l2)
		require.Error(t, ctrl.Reload(l2))
		require.Equal(t, l, srv.GetControl().Limits(), "a refused reload changes nothing")
	}
	_, code = echoOnce(t, srv, big)
	require.Equal(t, StatusMessageTooBig, code)
}

func writeFile(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "reload.json")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// TestReloadFile: a file's settings take effect (limits and log level),
// settings left out fall back to the start configuration, and every kind
// of bad file is refused with nothing changed.
func TestReloadFile(t *testing.T) {
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	cfg := DefaultConfig()
	cfg.Workers = 1
	srv := startServer(t, cfg, echoHandler, WithLogLevel(&level))
	ctrl := srv.GetControl()
	dir := t.TempDir()
	start := srv.GetControl().Limits()

	p := writeFile(t, dir, `{"batch_size": 5, "max_frame_size": 1000, "max_message_size": 1000,
		"max_handshake_size": 4096, "max_write_queue": 65536, "handshake_timeout": "3s", "idle_timeout": "90s",
		"log_level": "debug"}`)
	require.NoError(t, CheckReloadFile(p, cfg), "CheckReloadFile accepts what ReloadFile applies")
	require.NoError(t, ctrl.ReloadFile(p))
	want := Limits{BatchSize: 5, MaxFrameSize: 1000, MaxMessageSize: 1000, MaxHandshakeSize: 4096,
		MaxWriteQueue: 65536, HandshakeTimeout: 3 * time.Second, IdleTimeout: 90 * time.Second,
		WriteStallTimeout: cfg.WriteStallTimeout}
	require.Equal(t, want, srv.GetControl().Limits())
	require.Equal(t, slog.LevelDebug, level.Level())
	require.Equal(t, "DEBUG", ctrl.Stats()[StatsLogLevel])
	_, code := echoOnce(t, srv, make([]byte, 1001))
	require.Equal(t, StatusMessageTooBig, code)

	for name, body := range map[string]string{
		"unknown field":      `{"batch_size": 8, "max_mesage_size": 10}`,
		"bad duration":       `{"handshake_timeout": "soon"}`,
		"duration number":    `{"handshake_timeout": 5}`,
		"bad level":          `{"log_level": "loud"}`,
		"invalid limit":      `{"batch_size": 0}`,
		"message < frame":    `{"max_frame_size": 2000, "max_message_size": 1500}`,
		"wrong type":         `{"batch_size": "8"}`,
		"trailing data":      `{"batch_size": 8} {}`,
		"not an object":      `[1]`,
		"empty":              ``,
		"syntax":             `{"batch_size": 8,}`,
		"negative":           `{"max_write_queue": -1}`,
		"fraction":           `{"batch_size": 8.5}`,
		"out of int64 range": `{"max_frame_size": 99999999999999999999}`,
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, dir, body)
			require.ErrorContains(t, CheckReloadFile(p, cfg), "reload.json", "CheckReloadFile refuses it too")
			err := ctrl.ReloadFile(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), "reload.json")
			require.Equal(t, want, srv.GetControl().Limits(), "limits unchanged")
			require.Equal(t, slog.LevelDebug, level.Level(), "log level unchanged")
		})
	}
	require.Error(t, ctrl.ReloadFile(filepath.Join(dir, "missing.json")))
	require.Equal(t, want, srv.GetControl().Limits())

	// What the file leaves out goes back to the start configuration.
	require.NoError(t, ctrl.ReloadFile(writeFile(t, dir, `{"max_frame_size": 1000000, "max_message_size": 2000000}`)))
	back := start
	back.MaxFrameSize, back.MaxMessageSize = 1000000, 2000000
	require.Equal(t, back, srv.GetControl().Limits())
	require.Equal(t, slog.LevelWarn, level.Level())
	require.NoError(t, ctrl.ReloadFile(writeFile(t, dir, `{}`)))
	require.Equal(t, start, srv.GetControl().Limits())
	got, _ := echoOnce(t, srv, make([]byte, 1001))
	require.Len(t, got, 1001)

	require.NoError(t, ctrl.SetLogLevel(slog.LevelError))
	lvl, ok := ctrl.LogLevel()
	require.True(t, ok)
	require.Equal(t, slog.LevelError, lvl)
}

func TestReloadFileLogLevelNeedsWithLogLevel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	srv := startServer(t, cfg, echoHandler)
	ctrl := srv.GetControl()
	before := srv.GetControl().Limits()
	err := ctrl.ReloadFile(writeFile(t, t.TempDir(), `{"batch_size": 9, "log_level": "debug"}`))
	require.ErrorIs(t, err, ErrNoLogLevel)
	require.Equal(t, before, srv.GetControl().Limits(), "nothing changed, not even the valid batch size")
	require.ErrorIs(t, ctrl.SetLogLevel(slog.LevelDebug), ErrNoLogLevel)
	_, ok := ctrl.LogLevel()
	require.False(t, ok)
}

// TestReloadFileTooLarge: a runaway file is refused before it is parsed.
func TestReloadFileTooLarge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	srv := startServer(t, cfg, echoHandler)
	p := filepath.Join(t.TempDir(), "big.json")
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = io.CopyN(f, zeros{}, 2<<20)
	require.NoError(t, err)
	f.Close()
	require.ErrorContains(t, srv.GetControl().ReloadFile(p), "larger than")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
