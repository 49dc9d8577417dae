//go:build !noreactor

package reactor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/internal/uring"
)

// The io_uring engine (Linux 6.12 and later). Each loop owns one ring,
// set up with IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN and enabled (and
// its descriptor registered) on the loop's own thread, so the kernel does
// the loop's I/O only inside the loop's io_uring_enter and never in
// another thread's interrupt: one io_uring_enter(2) per turn submits the
// turn's sends and re-arms and waits for the next completions. What the
// ring holds for a loop:
//
//   - a multishot accept on the loop's SO_REUSEPORT listener;
//   - a read of the wakeup eventfd (Loop.Post);
//   - per connection, a multishot receive that takes its memory from the
//     loop's provided-buffer ring: uringBufs buffers of uringBufSize bytes,
//     slots of the loop's node-bound huge-page pool, consumed incrementally
//     (IOU_PBUF_RING_INC), so the kernel writes straight into pool memory,
//     small receives of many connections share a buffer, and a connection
//     costs no receive buffer while it is idle; it ends after a turn's
//     share (uringRecvLimit) and is armed again for the next turn, so
//     that a flooding client cannot take every buffer (uring_recv_linux.go);
//   - per connection with replies, one send per turn of the turn's
//     gathered buffers, with MSG_DONTWAIT so that it completes inside the
//     submitting io_uring_enter, short or not (uring_send_linux.go);
//   - a send draining a slow reader's write queue, which waits for room.
//
// The kernel learns about connections by slot and generation in the user
// data (uringOp), never by pointer. A connection is closed by a cancel of
// everything on its descriptor, hard-linked to an IORING_OP_CLOSE, so the
// descriptor number stays taken until nothing of ours can name it; its
// slot is reused once the last of its operations has completed.
type uringEngine struct {
	loop    *Loop
	ring    *uring.Ring
	started bool
	// acct is the account the engine's own buffers (the copies a send
	// makes, its chunks) are charged to: a connection of no client
	// address, within the engine's budget.
	acct Conn

	bufs    [uringBufs]ringBuf // the provided buffers, by buffer ID
	privMem []byte             // the buffers the pool could not give
	br      *uring.BufRing
	cur     []byte // the buffer being delivered (stable until its epoch ends)
	curBI   int    // its ID, -1 when none

	recvLimit  uint32 // bytes a receive takes before it ends (uringRecvLimit; 0: the kernel refuses a limit)
	limitWorks bool   // a receive armed with the limit brought bytes: the kernel takes it

	acceptArmed bool // a multishot accept is in flight
	acceptOff   bool // accepting paused or stopped: do not re-arm
	lnOps       int  // the listener's cancel and close in flight
	wake        [8]byte
	wakeArmed   bool // the eventfd read is in flight
	woken       bool // it completed this batch: handleWake after the batch

	building *epoch   // this turn's sends, submitted at the next poll
	flying   []*epoch // submitted epochs whose sends are not all answered, oldest first
	spare    []*epoch
	seq      uint32

	rearm  []connRef // receives to arm again (ENOBUFS, or the multishot ended)
	direct []connRef // connections a DirectReader wants to read into its memory
	retry  []connRef // drains and closes that found the SQ full
}

// Ring sizes. A turn prepares a few SQEs per completion it handles (a
// re-armed receive, a drain, a cancel and a close) plus one send per
// connection with replies; when the SQ fills, sqe submits what is there.
const (
	uringSQ = 4096
	uringCQ = 16384
)

// User data: the operation in the top byte, then 24 bits of the
// connection's generation and its 32-bit slot; a send's carries its
// epoch's sequence and its record's index instead.
const (
	udRecv uint64 = iota + 1
	udSend
	udDrain
	udCancel
	udClose
	udAccept
	udWake
	udListener // the listener's cancel or close
	udNop
	udDirectCancel // the cancel of a receive for direct reads
	udPoll         // the poll a direct reader waits for its next bytes with
	udWakeCancel   // settle's cancel of the wakeup's read: no connection's
)

func uringOp(op uint64, c *Conn) uint64 {
	return op<<56 | uint64(c.gen&0xffffff)<<32 | uint64(c.slot)
}

// connRef names a connection kept in a list across completions.
type connRef struct {
	c   *Conn
	gen uint32
}

func (r connRef) live() bool { return r.c.gen == r.gen && r.c.flags&fClosed == 0 }

// Bits of connPlat.state.
const (
	uringArmed    uint8 = 1 << iota // the multishot receive is in flight
	uringSending                    // a turn's send holds bytes the kernel has not answered
	uringQueued                     // in a retry list
	uringCloseDue                   // closed; its cancel and close wait for room in the SQ
	uringDraining                   // a send drains c.io.flight
	uringDirect                     // a DirectReader reads into its memory: its receive is cancelled meanwhile
	uringPolling                    // direct, and a poll waits for its next bytes (else it is on u.direct)
	uringLimited                    // the receive in flight was armed with a limit (uringRecvLimit)
)

func (u *uringEngine) open(l *Loop) error {
	r, err := uring.New(uringSQ, &uring.Params{
		Flags: uring.SetupRDisabled | uring.SetupSingleIssuer | uring.SetupDeferTaskrun |
			uring.SetupNoSQArray | uring.SetupSubmitAll | uring.SetupCQSize | uring.SetupClamp,
		CQEntries: uringCQ,
	})
	if err != nil {
		return fmt.Errorf("reactor: io_uring: %w", err)
	}
	return u.openRing(l, r)
}

// openRing takes r (a real ring, or a fake one in tests) as the loop's.
func (u *uringEngine) openRing(l *Loop, r *uring.Ring) (err error) {
	u.loop, u.curBI, u.ring = l, -1, r
	u.recvLimit = uringRecvLimit
	u.acct.loop = l
	if u.br, err = r.RegisterBufRing(uringBufs, 0, uring.PbufRingInc); err != nil {
		return fmt.Errorf("reactor: io_uring: %w", err)
	}
	u.building = u.newEpoch()
	return nil
}

// start runs on the loop's thread before its first wait: the ring takes
// that thread as its only submitter, the buffers go into the buffer ring,
// and the accept and the wakeup read are armed.
func (u *uringEngine) start(l *Loop) error {
	u.started = true
	if err := u.ring.Enable(); err != nil {
		return err
	}
	if err := u.ring.RegisterRingFD(); err != nil {
		return err
	}
	if err := u.fillBuffers(l); err != nil {
		return err
	}
	u.armAccept(l)
	u.armWake(l)
	return nil
}

func (u *uringEngine) close(l *Loop) {
	if u.br != nil {
		u.br.Unregister()
		u.br = nil
	}
	u.freeBuffers(l)
	if u.ring != nil {
		u.ring.Close()
		u.ring = nil
	}
}

// sqe returns a free SQE, submitting what is prepared when the SQ is full;
// nil only when the kernel takes nothing (the CQ is overflowing): the
// caller retries at the next turn.
func (u *uringEngine) sqe() *uring.SQE {
	if s := u.ring.GetSQE(); s != nil {
		return s
	}
	u.ring.Submit()
	return u.ring.GetSQE()
}

func (u *uringEngine) poll(l *Loop, timeout time.Duration) (int, error) {
	if !u.started {
		if err := u.start(l); err != nil {
			return 0, fmt.Errorf("reactor: io_uring start: %w", err)
		}
	}
	u.prepare(l)
	how := uring.SyscallWait
	if l.rawWait {
		how = uring.RawWait
	}
	if len(u.rearm) > 0 && (timeout < 0 || timeout > time.Millisecond) {
		// Receives wait for buffers, which come back as sends end; a send
		// that goes out whole posts nothing to wake the loop: look again
		// soon rather than sleep on them.
		timeout = time.Millisecond
	}
	var err error
	switch bw := l.e.cfg.BatchWait; {
	case bw > 0 && len(u.direct) == 0:
		_, err = u.ring.SubmitAndWaitBatch(uint32(l.batch.Load()), bw, timeout, how)
	case len(u.direct) > 0:
		_, err = u.ring.SubmitAndWait(0, 0, how) // reads are waiting: collect, do not sleep
	default:
		_, err = u.ring.SubmitAndWait(1, timeout, how)
	}
	l.now = time.Now().UnixNano()
	if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) {
		return 0, err // EBUSY, EAGAIN: the CQ is full or the kernel short of memory; reap and retry
	}
	return u.reap(l), nil
}

// prepare readies the SQ for the turn's enter: retries, the turn's sends,
// and the end of an epoch that sent nothing.
func (u *uringEngine) prepare(l *Loop) {
	u.runRetries(l)
	u.flushSends(l)
	u.releaseEpochs(l)
	u.armReceives(l) // buffers the epochs gave back may be what a receive waits for
}

// reap handles every completion the enter left in the CQ, the sends'
// first, and returns how many. The CQ is empty when it returns: with
// deferred task work nothing is added between enters (but for the inline
// completions of a submission forced by a full SQ, which this loop takes
// too), so the reads afterBatch makes on the loop's thread cannot overtake
// a receive the kernel made. That is also why a turn is not cut at
// Config.Batch completions, as an epoll turn is cut at Batch events; what
// bounds a turn is what each receive may take (uringRecvLimit).
func (u *uringEngine) reap(l *Loop) int {
	u.submitted()
	u.sendCQEs(l)
	u.releaseEpochs(l)
	total := 0
	for n := u.ring.Ready(); n > 0; n = u.ring.Ready() {
		for i := range n {
			cqe := *u.ring.CQE(i)
			u.complete(l, &cqe)
		}
		u.ring.Advance(n)
		total += n
	}
	u.afterBatch(l)
	return total
}

// submitted marks the epochs in flight as sent once the kernel has taken
// every SQE: their sends finished inside the enter that just returned.
func (u *uringEngine) submitted() {
	if u.ring.Pending() == 0 {
		for _, e := range u.flying {
			e.done = true
		}
	}
}

// complete handles one completion.
func (u *uringEngine) complete(l *Loop, cqe *uring.CQE) {
	slot, gen := uint32(cqe.UserData), uint32(cqe.UserData>>32)&0xffffff
	switch op := cqe.UserData >> 56; op {
	case udRecv:
		u.recvDone(l, u.conn(l, slot, gen), cqe)
	case 0: // a send's, handled by sendCQEs
	case udDrain:
		u.drainDone(l, u.conn(l, slot, gen), cqe.Res)
	case udPoll:
		u.directPolled(u.conn(l, slot, gen))
	case udCancel, udClose, udNop, udDirectCancel:
		if c := u.conn(l, slot, gen); c != nil {
			u.opDone(c)
		}
	case udAccept:
		u.acceptDone(l, cqe)
	case udWake:
		u.wakeArmed = false
		if cqe.Res != -int32(unix.ECANCELED) {
			u.woken = true
		}
	case udListener:
		u.lnOps--
	case udWakeCancel: // the wakeup's own completion says it ended
	}
}

// conn finds the connection a completion names, closed or not (a closed
// one keeps its slot until its last operation completes).
func (u *uringEngine) conn(l *Loop, slot, gen uint32) *Conn {
	if int(slot) < len(l.conns) {
		if c := l.conns[slot]; c != nil && c.gen&0xffffff == gen {
			return c
		}
	}
	l.log.Error("reactor: io_uring completion for an unknown connection", "loop", l.idx, "slot", slot)
	return nil
}

// opDone counts an operation of c as finished, and frees c's slot when c
// is closed and that was its last.
func (u *uringEngine) opDone(c *Conn) {
	c.p.ops--
	if c.flags&fClosed != 0 && c.p.ops == 0 {
		c.retire()
	}
}

// afterBatch does what must wait until every completion of the batch is
// handled: the wakeup's control words and tasks (a shutdown reads what
// each connection sent, which must come after the bytes already in the
// CQ), the reads a DirectReader asked for.
func (u *uringEngine) afterBatch(l *Loop) {
	if u.woken {
		u.woken = false
		l.handleWake()
		u.armWake(l)
	}
	// One read per connection per turn, as epoll makes (a read buffer's
	// worth: ReadTarget's slice), so that a large message is read turn by
	// turn between the loop's other connections; one that wants more
	// stays on the list, and the next enter does not wait. Its multishot
	// receive is cancelled meanwhile (directStart), so that the payload
	// goes straight where it ends up rather than through the provided
	// buffers and a copy; once the message is whole, or the socket is
	// empty, the receive is armed again.
	kept := u.direct[:0]
	for _, r := range u.direct {
		if r.c.gen != r.gen {
			continue
		}
		if r.live() && r.c.p.state&uringArmed != 0 {
			// Its receive's cancel has not landed: bytes that receive
			// took may still wait in the kernel (a CQ overflowing), and a
			// read now would overtake them. Nothing reads beside a kernel
			// reader; the cancel's completion comes with the next enter.
			kept = append(kept, r)
			continue
		}
		read := r.live() && l.read(r.c)
		switch c := r.c; {
		case !r.live() || c.flags&fPeerEOF != 0 || c.inLen() > 0 || len(l.dr.ReadTarget(c)) == 0:
			u.directEnd(c) // whole, or closed
		case read:
			kept = append(kept, r)
		default:
			u.directWait(c) // the socket is empty: wait for more
		}
	}
	clear(u.direct[len(kept):])
	u.direct = kept
	u.releaseEpochs(l) // receives to arm again are armed by prepare, before the next enter
}

// runRetries prepares the drains and closes that found the SQ full.
func (u *uringEngine) runRetries(l *Loop) {
	if len(u.retry) == 0 {
		return
	}
	list := u.retry
	u.retry = nil
	for _, r := range list {
		c := r.c
		c.p.state &^= uringQueued
		switch {
		case c.gen != r.gen:
		case c.p.state&uringCloseDue != 0:
			c.p.state &^= uringCloseDue
			u.cancelAndClose(c)
		case c.p.state&uringDraining != 0 && c.flags&fClosed != 0:
			// Never posted, and the descriptor is closing: drop it.
			c.p.state &^= uringDraining
			c.flightDone()
			if c.p.ops == 0 {
				c.retire()
			}
		case c.p.state&uringDraining != 0:
			u.postDrain(c)
		}
	}
}

func (u *uringEngine) later(c *Conn) {
	if c.p.state&uringQueued == 0 {
		c.p.state |= uringQueued
		u.retry = append(u.retry, connRef{c, c.gen})
	}
}

// armWake reads the eventfd: the read completes when another goroutine
// writes it (Loop.wakePoller), consuming the count without a system call.
// The 8 bytes are in the engine, a heap object that outlives the ring.
func (u *uringEngine) armWake(l *Loop) {
	if u.wakeArmed || l.p.efd < 0 || l.closed.Load() {
		return
	}
	if s := u.sqe(); s != nil {
		s.PrepRead(l.p.efd, u.wake[:], udWake<<56)
		u.wakeArmed = true
	}
}

func (u *uringEngine) armAccept(l *Loop) {
	if u.acceptArmed || u.acceptOff || l.p.lfd < 0 {
		return
	}
	if s := u.sqe(); s != nil {
		s.PrepAcceptMultishot(l.p.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, udAccept<<56)
		u.acceptArmed = true
	}
}

// acceptDone opens an accepted connection; a failed accept pauses
// accepting as the epoll engine does, and a multishot accept that ended
// is armed again.
func (u *uringEngine) acceptDone(l *Loop, cqe *uring.CQE) {
	if cqe.Flags&uring.CQEFMore == 0 {
		u.acceptArmed = false
	}
	switch {
	case cqe.Res >= 0:
		if u.acceptOff || l.stopping {
			unix.Close(int(cqe.Res))
		} else {
			// A multishot accept gives no address (the one it would
			// write is overwritten by the next accept, io_uring_prep_multishot_accept(3)):
			// getpeername gives it, for admission.
			l.accepted(int(cqe.Res), l.p.sa.peer(int(cqe.Res)))
		}
	case cqe.Res == -int32(unix.ECANCELED):
	default:
		l.acceptError(unix.Errno(-cqe.Res))
	}
	u.armAccept(l)
}

// register arms the multishot receive of a new connection.
func (u *uringEngine) register(c *Conn) error {
	if !u.armRecv(c) {
		return errors.New("reactor: io_uring: submission queue full")
	}
	return nil
}

func (u *uringEngine) pauseAccepting(l *Loop) {
	u.acceptOff = true
	if u.acceptArmed {
		if s := u.sqe(); s != nil {
			s.PrepCancel(udAccept<<56, 0, udListener<<56)
			u.lnOps++
		}
	}
}

func (u *uringEngine) resumeAccepting(l *Loop) {
	u.acceptOff = false
	u.armAccept(l)
}

// stopAccepting cancels the accept and closes the listener through the
// ring, in that order; a ring that never started has nothing in flight.
func (u *uringEngine) stopAccepting(l *Loop) {
	u.acceptOff = true
	fd := l.p.lfd
	l.p.lfd = -1
	if !u.started {
		unix.Close(fd)
		return
	}
	cancel, cl := u.sqe(), u.sqe()
	if cancel == nil || cl == nil {
		unix.Close(fd) // cannot happen with the SQ emptied each turn; the kernel's reference keeps the socket until the accept ends
		return
	}
	cancel.PrepCancel(udAccept<<56, 0, udListener<<56)
	cancel.Flags |= uring.SQEIOHardlink
	cl.PrepClose(fd, udListener<<56)
	u.lnOps += 2
}

// closeSocket cancels everything in flight on c's descriptor, then closes
// it, both through the ring: until the close, the descriptor number is
// ours, so no SQE of ours can reach another connection's socket. c keeps
// its slot until the completions of all its operations are in.
func (u *uringEngine) closeSocket(c *Conn) {
	if !u.started {
		unix.Close(int(c.fd))
		c.retire()
		return
	}
	u.cancelAndClose(c)
}

func (u *uringEngine) cancelAndClose(c *Conn) {
	if u.ring.Pending()+2 > u.ring.SQEntries() {
		u.ring.Submit()
	}
	cancel := u.sqe()
	if cancel == nil {
		c.p.state |= uringCloseDue
		u.later(c)
		return
	}
	cl := u.sqe()
	if cl == nil {
		cancel.PrepNop(uringOp(udNop, c))
		c.p.ops++
		c.p.state |= uringCloseDue
		u.later(c)
		return
	}
	cancel.PrepCancelFD(int(c.fd), uring.CancelAll, uringOp(udCancel, c))
	cancel.Flags |= uring.SQEIOHardlink
	cl.PrepClose(int(c.fd), uringOp(udClose, c))
	c.p.ops += 2
}

// stopInput needs nothing: the multishot receive ended with the EOF.
func (u *uringEngine) stopInput(*Conn) {}

// settleTimeout bounds how long a finishing loop waits for the completions
// of its cancelled operations.
const settleTimeout = 2 * time.Second

// settle waits (bounded) until the kernel has answered every operation of
// the loop (every connection is closed by now, its cancel and close
// queued), so that the buffers it could still write go back to the pool
// and the ring can be unmapped.
func (u *uringEngine) settle(l *Loop) {
	if !u.started {
		return
	}
	if u.wakeArmed {
		if s := u.sqe(); s != nil {
			s.PrepCancel(udWake<<56, 0, udWakeCancel<<56)
		}
	}
	deadline := time.Now().Add(settleTimeout)
	for u.busy(l) && time.Now().Before(deadline) {
		u.runRetries(l)
		u.flushSends(l)
		u.ring.SubmitAndWait(1, tickInterval, uring.SyscallWait)
		u.submitted()
		u.sendCQEs(l)
		n := u.ring.Ready()
		for i := range n {
			cqe := *u.ring.CQE(i)
			u.complete(l, &cqe)
		}
		u.ring.Advance(n)
		u.rearm = u.rearm[:0]
		u.direct = u.direct[:0]
		u.releaseEpochs(l)
	}
	u.releaseEpochs(l)
	if u.busy(l) {
		l.log.Warn("reactor: io_uring operations still pending at exit", "loop", l.idx, "why", u.busyReason(l))
	}
}

// busy reports whether the kernel still holds anything of the loop's.
func (u *uringEngine) busy(l *Loop) bool { return u.busyReason(l) != "" }

func (u *uringEngine) busyReason(l *Loop) string {
	var why []string
	if u.lnOps > 0 || u.acceptArmed {
		why = append(why, "listener")
	}
	if u.wakeArmed {
		why = append(why, "wakeup read")
	}
	n := 0
	for _, c := range l.conns {
		if c != nil {
			n++
		}
	}
	if n > 0 {
		why = append(why, fmt.Sprintf("%d connections", n))
	}
	if len(u.flying) > 0 || len(u.retry) > 0 || len(u.building.recs) > 0 {
		why = append(why, "sends")
	}
	return strings.Join(why, ", ")
}
