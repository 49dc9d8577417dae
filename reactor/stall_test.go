package reactor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStallClockOutlivesFlight: an asynchronous send (io_uring's drain,
// IOCP's WSASend) that empties the write queue into the kernel frees its
// flight before outputDone runs; the connIO, and with it the write stall
// clock, must still be there for outputDone, which hands the timing on to
// the kernel's watch (a client that never reads must still be dropped
// when the kernel took the whole reply). Before, flightDone released the
// connIO with the clock running, outputDone saw no queue, and such a
// client stayed open: the soak's pushers window on io_uring, 4 runs of 34.
func TestStallClockOutlivesFlight(t *testing.T) {
	e := startLines(t, &lineEcho{}, 1)
	l := e.Loops()[0]
	type state struct{ afterFlight, afterDone bool }
	got := make(chan state, 1)
	require.NoError(t, l.Post(Task{Fn: func() { // on the loop: a connection made up for it
		c := &Conn{loop: l, fd: -1}
		io := c.ioState()
		io.out.Append(c, make([]byte, 4096), 0)
		io.wstall = l.now | 1 // queued output: the clock runs (not tracked: no sweep sees c)
		io.flight.take(c)
		more := io.flight.sent(c, 4096) // the kernel took it all
		c.flightDone()
		s := state{afterFlight: !more && c.io != nil && c.io.wstall != 0}
		c.outputDone() // stops the clock; the kernel's watch cannot start on fd -1
		s.afterDone = c.io == nil
		c.flags |= fClosed
		got <- s
	}}))
	s := <-got
	require.True(t, s.afterFlight, "the stall clock must outlive the flight that drained the queue")
	require.True(t, s.afterDone, "outputDone gives the connIO back")
}
