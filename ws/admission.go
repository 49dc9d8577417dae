package ws

import (
	"strings"

	gws "github.com/gobwas/ws"

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

var errOriginNotAllowed = gws.RejectConnectionError(
	gws.RejectionStatus(403),
	gws.RejectionReason("origin not allowed"),
)

// checkOrigin is the upgrader's header hook when AllowedOrigins is set.
func (s *Server) checkOrigin(key, value []byte) error {
	if !strings.EqualFold(string(key), "Origin") {
		return nil
	}
	if !s.origins[strings.ToLower(string(value))] {
		return errOriginNotAllowed
	}
	return nil
}
