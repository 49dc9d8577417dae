//go:build !noreactor

package reactor

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDrainInSlices is issue 14's point 5 for writes: a long write queue
// is sent at most writeSlice bytes per writability event, so that the
// other connections of the loop take their turns between the slices
// (before, one event wrote until the socket would take no more: megabytes
// on loopback). The handler queues 16 MiB for a client that reads as fast
// as it can; each drainOut call, driven from a task on the loop, may move
// at most writeSlice bytes.
func TestDrainInSlices(t *testing.T) {
	h := newEchoHandler()
	conns := make(chan *Conn, 1)
	h.onOpen = func(c *Conn) { conns <- c }
	e := startEngine(t, h, 1)
	nc := dialEngine(t, e)
	c := <-conns
	l := e.Loops()[0]
	big := bytes.Repeat([]byte{'q'}, 16<<20)
	queued := make(chan int, 1)
	require.NoError(t, l.Post(Task{Fn: func() {
		c.Write(big)
		c.Flush()
		queued <- c.Queued()
	}}))
	require.Positive(t, <-queued, "the kernel took all 16 MiB at once: nothing to drain")
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(nc, make([]byte, len(big)))
		read <- err
	}()
	most := 0
	for range 1000 {
		moved := make(chan [2]int, 1)
		require.NoError(t, l.Post(Task{Fn: func() {
			before := l.Stats().BytesOut
			if c.flags&fClosed == 0 && c.Queued() > 0 {
				c.drainOut()
			}
			moved <- [2]int{int(l.Stats().BytesOut - before), c.Queued()}
		}}))
		m := <-moved
		most = max(most, m[0])
		if m[1] == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond) // the client empties the socket meanwhile
	}
	require.NoError(t, <-read)
	t.Logf("most bytes written by one drainOut: %d (writeSlice %d)", most, writeSlice)
	require.LessOrEqual(t, most, writeSlice)
}
