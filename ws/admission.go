package ws

import (
	"strings"

	"github.com/hioload-ws/hioload-ws/reactor"
)

// Who gets a connection: the caps of Config (MaxConns, MaxConnsPerIP,
// MaxHandshakes, MaxHandshakesPerIP) are the reactor's admission caps,
// checked when the TCP connection is accepted, before a byte of the
// handshake is read; a connection over one is reset at once and counted
// (Stats.Refused). A connection counts as handshaking until its upgrade
// succeeds (reactor.Conn.Established). The Origin check runs on the
// upgrade request.

// admission maps the caps of cfg onto the reactor's.
func admission(cfg *Config, rc *reactor.Config) {
	rc.MaxConns = int(cfg.maxConns())
	rc.MaxConnsPerPeer = cfg.MaxConnsPerIP
	rc.MaxPending = cfg.MaxHandshakes
	rc.MaxPendingPerPeer = cfg.MaxHandshakesPerIP
}

// originAllowed reports whether a browser at origin may connect
// (AllowedOrigins, compared case-insensitively).
func (s *Server) originAllowed(origin []byte) bool {
	return s.origins == nil || s.origins[strings.ToLower(string(origin))]
}
