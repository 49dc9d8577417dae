package reactor

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Issue 13, point 7: every copy is counted. Each case feeds lineEcho (which
// consumes complete lines and leaves a partial one) a sequence of writes,
// each read by the server before the next is sent, and checks the copy
// counters byte for byte. Before, CopiedIn counted only the leftover put
// back in front of a read (and counted it in place of the new bytes when
// the leftover was too long for that), and growing a buffer or moving a
// leftover counted nothing.
func TestCopiesCounted(t *testing.T) {
	x := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	for _, tc := range []struct {
		name     string
		writes   [][]byte
		in, grow uint64
	}{
		// "abc" is kept (3), then put back in front of "def\n" (3).
		{"short leftover", [][]byte{[]byte("abc"), []byte("def\n")}, 6, 0},
		// 5000 bytes are kept (5000); longer than the headroom, so the
		// next read's 3 bytes are appended behind them (3).
		{"long leftover", [][]byte{x(5000), []byte("yz\n")}, 5003, 0},
		// ... and what follows the consumed line moves to the front of
		// the connection's buffer (3).
		{"moved leftover", [][]byte{x(6000), []byte("\nbbb")}, 6007, 0},
		// The second 5000 bytes outgrow the 8 KiB buffer: the first 5000
		// move to a 16 KiB one (grow 5000).
		{"grown leftover", [][]byte{x(5000), x(5000), []byte("\n")}, 10001, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startLines(t, &lineEcho{}, 1)
			c := dialEngine(t, e)
			l := e.Loops()[0]
			var want []byte
			for _, w := range tc.writes {
				reads := l.Stats().ReadCalls
				_, err := c.Write(w)
				require.NoError(t, err)
				require.Eventually(t, func() bool { return l.Stats().ReadCalls > reads }, 5*time.Second, time.Millisecond)
				want = append(want, w...)
			}
			want = want[:bytes.LastIndexByte(want, '\n')+1]
			got := make([]byte, len(want))
			_, err := io.ReadFull(c, got)
			require.NoError(t, err)
			require.Equal(t, want, got)
			st := l.Stats()
			require.Equal(t, tc.in, st.CopiedIn, "CopiedIn")
			require.Equal(t, tc.grow, st.CopiedGrow, "CopiedGrow")
		})
	}
}

// TestQueueCopiesCounted: moving the unsent part of a write queue to its
// front to make room, and growing a buffer, are copies and are counted.
func TestQueueCopiesCounted(t *testing.T) {
	e := startLines(t, &lineEcho{}, 1)
	l := e.Loops()[0]
	type result struct{ out, grow, moved uint64 }
	res := make(chan [2]result, 1)
	require.NoError(t, l.Post(Task{Fn: func() { // on the loop: a queue of a connection made up for it
		c := &Conn{loop: l, fd: -1}
		st0 := l.Stats()
		c.out.Append(c, make([]byte, 4096), 0)
		c.outHead = 3000 // 3000 bytes were written
		c.queue(make([]byte, 2000))
		st1 := l.Stats()
		var b Buf
		moved := 0
		for range 200 {
			old := b.Cap()
			b.Append(c, make([]byte, 700), 0)
			if b.Cap() != old && old > 0 {
				moved += b.Len() - 700
			}
		}
		st2 := l.Stats()
		b.Free(c)
		c.out.Free(c)
		c.wstall, c.flags = 0, c.flags|fClosed // leave nothing behind
		res <- [2]result{
			{st1.CopiedOut - st0.CopiedOut, st1.CopiedGrow - st0.CopiedGrow, 0},
			{0, st2.CopiedGrow - st1.CopiedGrow, uint64(moved)},
		}
	}}))
	r := <-res
	// 1096 unsent bytes moved to the front, then 2000 appended; the move
	// made room, so nothing grew.
	require.Equal(t, uint64(1096+2000), r[0].out)
	require.Zero(t, r[0].grow)
	require.NotZero(t, r[1].moved)
	require.Equal(t, r[1].moved, r[1].grow, "every byte moved by growing is counted")
}
