//go:build (!linux && !windows) || (linux && noreactor)

package reactor

import (
	"fmt"
	"net"
	"runtime"
	"time"
)

// Where no poller exists yet, openPoller fails, so New fails before any loop
// or connection is made and the other hooks are never reached at run time.
// A Linux build with -tags noreactor takes this file instead of the epoll
// files, so that this path is tested where tests run (scripts/test.sh runs
// TestNotSupportedElsewhere so).

// hasPoller says whether this build has a poller.
const hasPoller = false

type poller struct{}

type connPlat struct{}

type sockFD = int

func (l *Loop) openPoller() error {
	return fmt.Errorf("%w (%s/%s: the reactor runs on Linux (epoll) and Windows (IOCP))", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// slotLimit: no connection is ever opened here.
const slotLimit = 0

// chooseIOEngine leaves the choice to openPoller, which fails.
func chooseIOEngine(want IOEngine) (IOEngine, string, error) { return want, "", nil }

func (l *Loop) poll(time.Duration) (int, error) { return 0, ErrUnsupported }
func (l *Loop) wakePoller() error               { return ErrUnsupported }
func (l *Loop) pauseAccepting()                 {}
func (l *Loop) resumeAccepting()                {}
func (l *Loop) stopAccepting()                  {}
func (l *Loop) settle()                         {}
func (l *Loop) closePoller()                    {}
func (c *Conn) recv([]byte) (int, error)        { return 0, ErrUnsupported }
func (c *Conn) send([][]byte) (int, error)      { return 0, ErrUnsupported }
func (c *Conn) startOutput()                    {}
func (c *Conn) sending() bool                   { return false }
func (c *Conn) unsent() (int, bool)             { return 0, false }
func (c *Conn) acked() (uint64, bool)           { return 0, false }
func (c *Conn) stopInput()                      {}
func (c *Conn) shutWrite() error                { return ErrUnsupported }
func (c *Conn) closeSocket()                    {}
func (c *Conn) remoteAddr() net.Addr            { return nil }
func nameThread(string) error                   { return ErrUnsupported }
func threadID() int                             { return 0 }
func onMainThread() bool                        { return false }

// FileLimit is -1 where the reactor does not run.
func FileLimit() int { return -1 }
