package reactor

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/ring"
)

// control bits posted to a loop outside its inbox, so that a full inbox can
// never lose a shutdown.
const (
	ctlShutdown uint32 = 1 << iota
	ctlAbort
)

// headroom is space kept in front of each read so that a small leftover
// from the previous read can be put back in front of the new bytes without
// a second buffer.
const headroom = 4096

// tickInterval is how often a loop looks at deadlines while any are set.
const tickInterval = 250 * time.Millisecond

// Loop is one event loop. Its methods other than Post, Stats, Index, Spec and
// TID must only be called on the loop's own thread (from Handler callbacks).
type Loop struct {
	e     *Engine
	h     Handler
	log   *slog.Logger
	idx   int
	spec  LoopSpec
	inbox *ring.MPMC[Task]
	stats loopStats

	wakePending atomic.Bool
	ctl         atomic.Uint32
	batch       atomic.Int32 // events per wait; SetBatch changes it
	closed      atomic.Bool
	tid         atomic.Int32

	// Loop-thread state.
	cache      *hugepage.Cache // the loop's front of its node's pool; nil: Go heap
	rbuf       []byte          // read buffer: headroom, then room for a read
	rbufH      hugepage.Buffer // rbuf's pool buffer; zero for heap memory
	rbufShared bool            // a handler retained rbuf: read into a new one
	spare      [][]byte        // large heap buffers kept for reuse (see free)
	spareBytes int             // their capacity
	pending    *Conn           // connection whose writes sit in iov
	iovBytes   int             // bytes in iov
	scratch    []byte          // frame headers for pending writes
	scrOff     int             // used part of scratch
	timed      []*Conn         // connections with a deadline
	timedSpare []*Conn         // sweep's second buffer
	deferred   []Buf           // freed after the pending writes are flushed (Conn.FreeAfterFlush)
	stopping   bool            // shutdown began: exit once no connection is left
	now        int64           // unix nanoseconds at the start of the turn
	plat       loopPlat        // the platform's poller state
}

// Post hands t to the loop from any goroutine. It never blocks: a full inbox
// returns ErrInboxFull, a stopped loop ErrClosed.
func (l *Loop) Post(t Task) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if !l.inbox.Push(t) {
		return ErrInboxFull
	}
	l.signal()
	return nil
}

// signal wakes the loop unless a wakeup is already on its way. The loop
// clears wakePending before it drains the inbox, so a task pushed after the
// drain always sees false here and writes the wakeup (runtime netpollBreak
// and gnet Poller.Trigger use the same guard).
func (l *Loop) signal() {
	if l.wakePending.CompareAndSwap(false, true) {
		if err := l.wake(); err != nil {
			l.log.Error("reactor: wake loop", "loop", l.idx, "err", err)
		}
	}
}

func (l *Loop) postControl(bit uint32) {
	l.ctl.Or(bit)
	l.signal()
}

// SetBatch changes how many events the loop takes per wait, from its next
// turn on. Safe from any goroutine; a control word, so a full inbox cannot
// lose it.
func (l *Loop) SetBatch(n int) {
	if n < 1 {
		n = 1
	}
	l.batch.Store(int32(n))
	l.signal()
}

// handleWake acts on a wakeup: control words first (a shutdown begins
// before the tasks run, an abort closes what is left after them), then the
// inbox. The platform's onWake calls it once the wakeup is consumed.
func (l *Loop) handleWake() {
	ctl := l.ctl.Swap(0)
	if ctl&ctlShutdown != 0 && !l.stopping {
		l.beginShutdown()
	}
	l.drainInbox()
	if ctl&ctlAbort != 0 {
		l.closeAll(ErrShutdown)
	}
}

// drainInbox runs queued tasks; called after a wakeup.
func (l *Loop) drainInbox() {
	l.wakePending.Store(false)
	for {
		t, ok := l.inbox.Pop()
		if !ok {
			return
		}
		switch {
		case t.Fn != nil:
			t.Fn()
		case t.Conn != nil && t.Conn.loop == l && t.Conn.gen == t.Gen && t.Conn.flags&fClosed == 0:
			l.h.OnTask(t.Conn, &t)
			t.Conn.Flush()
		}
	}
}

// shutdownConn reads what c had already sent (bounded, so that a flooding
// peer cannot hold the shutdown), so that it is handled rather than lost,
// then offers c to Handler.OnShutdown.
func (l *Loop) shutdownConn(c *Conn) {
	if c.flags&(fClosed|fWriteShut) != 0 {
		return
	}
	for i := 0; i < 64 && c.flags&fClosed == 0; i++ {
		if !l.read(c) {
			break
		}
	}
	if c.flags&(fClosed|fClosing|fWriteShut) == 0 {
		l.h.OnShutdown(c)
		c.Flush()
	}
}

// Now is the time at the start of the loop's current turn; cheaper than
// time.Now for per-message bookkeeping.
func (l *Loop) Now() time.Time { return time.Unix(0, l.now) }

// NowNano is Now in Unix nanoseconds.
func (l *Loop) NowNano() int64 { return l.now }

// track adds c to the deadline list.
func (l *Loop) track(c *Conn) {
	if c.flags&fTimed == 0 {
		c.flags |= fTimed
		l.timed = append(l.timed, c)
	}
}

// sweep acts on deadlines that passed: a closing connection's linger
// deadline closes it; any other goes to Handler.OnDeadline. The list is
// rebuilt into the spare slice so that SetDeadline from the handler appends
// safely.
func (l *Loop) sweep() {
	old := l.timed
	l.timed = l.timedSpare[:0]
	for _, c := range old {
		switch {
		case c.flags&fClosed != 0 || c.deadline == 0:
			c.flags &^= fTimed
		case l.now < c.deadline:
			l.timed = append(l.timed, c)
		default:
			c.flags &^= fTimed
			c.deadline = 0
			if c.flags&(fClosing|fWriteShut|fPeerEOF) != 0 {
				// The reactor's own linger deadline. A peer still reading the
				// replies queued before a close gets more time; one that
				// stopped reading is cut.
				if c.flags&fClosing != 0 && c.progressed() {
					c.SetDeadline(time.Unix(0, l.now).Add(l.e.cfg.LingerTimeout))
					continue
				}
				c.closeNow(ErrTimeout)
				continue
			}
			l.h.OnDeadline(c)
			c.Flush()
		}
	}
	clear(old)
	l.timedSpare = old[:0]
}

// takePending ends the collection of writes for a flush: it returns how many
// iovecs are gathered in plat.iov and forgets which connection they were for.
func (l *Loop) takePending() int {
	n := l.plat.niov
	l.plat.niov, l.pending, l.iovBytes = 0, nil, 0
	return n
}

// dropPending discards the writes gathered for c, which is closing.
func (l *Loop) dropPending(c *Conn) {
	if l.pending == c {
		clear(l.plat.iov[:l.plat.niov])
		l.takePending()
		l.resetScratch()
	}
}

// resetScratch runs after every flush (and when a connection's pending
// writes are dropped): the scratch memory and the buffers kept alive for
// the flushed writes (Conn.FreeAfterFlush) are free again.
func (l *Loop) resetScratch() {
	l.scrOff = 0
	for i := range l.deferred {
		l.deferred[i].Free(l)
	}
	l.deferred = l.deferred[:0]
}
