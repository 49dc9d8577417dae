//go:build !linux && !windows

package reactor

import (
	"fmt"
	"net"
	"runtime"
)

// loopPlat is empty where no reactor exists yet: New fails before any loop
// or connection is made, so the hooks below are never reached at run time.
type loopPlat struct {
	iov  [1][]byte
	niov int
}

func (p *loopPlat) setIov(b []byte) { p.iov[p.niov] = b; p.niov++ }

func newLoop(*Engine, int, LoopSpec) (*Loop, error) {
	return nil, fmt.Errorf("%w (%s/%s: the reactor runs on Linux (epoll) and Windows (IOCP))", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

func onMainThread() bool             { return false }
func (l *Loop) run()                 {}
func (l *Loop) wake() error          { return ErrUnsupported }
func (l *Loop) release()             { l.closed.Store(true) }
func (c *Conn) flush()               {}
func (c *Conn) closeNow(error)       { c.flags |= fClosed }
func (c *Conn) shutdownWrite()       { c.flags |= fWriteShut }
func (c *Conn) remoteAddr() net.Addr { return nil }
func (c *Conn) progressed() bool     { return false }
func (c *Conn) inFlight() int        { return 0 }
func (l *Loop) read(*Conn) bool      { return false }
func (l *Loop) beginShutdown()       {}
func (l *Loop) closeAll(error)       {}

// FileLimit is -1 where the reactor does not run.
func FileLimit() int { return -1 }
