package ws

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConfigRanges: every setting outside what the server can honour is
// refused by NewServer with an error that names the valid range, and the
// edges of each range are accepted.
func TestConfigRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" = accepted
	}{
		{"batch 0", func(c *Config) { c.BatchSize = 0 }, "want 1..4096"},
		{"batch 4097", func(c *Config) { c.BatchSize = 4097 }, "want 1..4096"},
		{"batch 4096", func(c *Config) { c.BatchSize = 4096 }, ""},
		{"ring 1", func(c *Config) { c.ReactorRing = 1 }, "want 2..1048576"},
		{"ring 2^20+1", func(c *Config) { c.ReactorRing = 1<<20 + 1 }, "want 2..1048576"},
		{"ring 2", func(c *Config) { c.ReactorRing = 2 }, ""},
		{"read buffer 4095", func(c *Config) { c.ReadBufferSize = 4095 }, "want 4096..67108864"},
		{"read buffer 64 MiB + 1", func(c *Config) { c.ReadBufferSize = 64<<20 + 1 }, "want 4096..67108864"},
		{"read buffer 4096", func(c *Config) { c.ReadBufferSize = 4096 }, ""},
		{"frame 124", func(c *Config) { c.MaxFrameSize = 124 }, "want at least 125"},
		{"message below frame", func(c *Config) { c.MaxMessageSize = c.MaxFrameSize - 1 }, "below max frame size"},
		{"handshake 255", func(c *Config) { c.MaxHandshakeSize = 255 }, "want at least 256"},
		{"write queue 1023", func(c *Config) { c.MaxWriteQueue = 1023 }, "want at least 1024"},
		{"handshake timeout 0", func(c *Config) { c.HandshakeTimeout = 0 }, "must be positive"},
		{"idle 1s", func(c *Config) { c.IdleTimeout = time.Second }, "want 0 (off) or at least 2s"},
		{"workers -1", func(c *Config) { c.Workers = -1 }, "want 0 (auto) or more"},
		{"node -2", func(c *Config) { c.NUMANode = -2 }, "want -1 (auto) or a node number"},
		{"shutdown timeout 0", func(c *Config) { c.ShutdownTimeout = 0 }, "must be positive"},
		{"heap -1", func(c *Config) { c.MaxHeapBytes = -1 }, "0 (no bound) or positive"},
		{"conns -1", func(c *Config) { c.MaxConns = -1 }, "0 (default) or positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ListenAddr = "127.0.0.1:0"
			cfg.Workers = 1
			cfg.NoPool = true
			tc.mod(&cfg)
			srv, err := NewServer(cfg)
			if tc.want == "" {
				require.NoError(t, err)
				require.NoError(t, srv.Shutdown()) // never ran: releases the listener
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
