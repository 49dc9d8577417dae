package reactor

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lineEcho is a minimal line protocol over the reactor: it echoes every complete
// line (up to '\n') and keeps a partial line for the next read, which
// exercises consumed counts, leftovers, queued writes and tasks.
type lineEcho struct {
	opened, closed atomic.Int32
	deadlines      atomic.Int32
	shutdowns      atomic.Int32
	closeErrs      chan error
}

func (h *lineEcho) OnOpen(c *Conn) { h.opened.Add(1) }

func (h *lineEcho) OnRead(c *Conn, data []byte) int {
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return 0
	}
	if bytes.HasPrefix(data, []byte("deadline\n")) {
		c.SetDeadline(c.Loop().Now().Add(time.Millisecond))
	}
	c.Write(data[:end+1]) // zero-copy: the reply points into the read buffer
	return end + 1
}

func (h *lineEcho) OnTask(c *Conn, t *Task) { c.Write(t.Data) }

func (h *lineEcho) OnDeadline(c *Conn) {
	h.deadlines.Add(1)
	c.Write([]byte("timeout\n"))
	c.CloseGracefully()
}

func (h *lineEcho) OnShutdown(c *Conn) {
	h.shutdowns.Add(1)
	c.Write([]byte("bye\n"))
	c.CloseGracefully()
}

func (h *lineEcho) OnEvict(*Conn, error) {}

func (h *lineEcho) OnClose(c *Conn, err error) {
	h.closed.Add(1)
	if h.closeErrs != nil {
		h.closeErrs <- err
	}
}

// startLines runs h on the given number of unpinned loops.
func startLines(t *testing.T, h Handler, loops int) *Engine {
	t.Helper()
	return startEngine(t, h, loops, func(c *Config) {
		c.LingerTimeout = 500 * time.Millisecond
		for i := range c.Loops {
			c.Loops[i].CPU = -1
		}
	})
}

func TestLinesSplitAcrossReads(t *testing.T) {
	h := &lineEcho{}
	e := startLines(t, h, 2)
	c := dialEngine(t, e)
	msg := []byte("hello, reactor\nsecond line\n")
	for i := range msg { // one byte per write: every line is split
		_, err := c.Write(msg[i : i+1])
		require.NoError(t, err)
		time.Sleep(100 * time.Microsecond)
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
}

// TestWriteQueueKeepsOrder: a client that does not read while the server
// writes 32 MiB gets every byte, in order, once it reads.
func TestWriteQueueKeepsOrder(t *testing.T) {
	h := &lineEcho{}
	e := startLines(t, h, 1)
	c := dialEngine(t, e)
	// 32 MiB each way under -race on two busy cores can take longer than
	// dialEngine's 20 s; this test is about order, not speed.
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	var want bytes.Buffer
	line := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	line[len(line)-1] = '\n'
	for i := 0; i < 512; i++ {
		line[0] = byte('A' + i%26)
		want.Write(line)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(want.Bytes())
		done <- err
	}()
	// Let the server queue behind a full socket: it must, once the socket
	// buffers are full (a fixed pause was not always enough under wine).
	require.Eventually(t, func() bool { return e.Loops()[0].Stats().CopiedOut > 0 }, 10*time.Second, 5*time.Millisecond,
		"the test never made the server queue")
	got := make([]byte, want.Len())
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.True(t, bytes.Equal(want.Bytes(), got), "stream differs")
}

// TestPostFromManyGoroutines: tasks posted concurrently reach the
// connection, each exactly once.
func TestPostFromManyGoroutines(t *testing.T) {
	conns := make(chan *Conn, 1)
	h := &postEcho{lineEcho: lineEcho{}, conns: conns}
	e := startLines(t, h, 1)
	c := dialEngine(t, e)
	c.Write([]byte("hi\n"))
	rc := <-conns
	var wg sync.WaitGroup
	const senders, each = 8, 100
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for rc.Loop().Post(Task{Conn: rc, Gen: rc.Gen(), Data: []byte("x\n")}) == ErrInboxFull {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	got := make([]byte, len("hi\n")+senders*each*2)
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, senders*each, bytes.Count(got, []byte("x\n")))
}

type postEcho struct {
	lineEcho
	conns chan *Conn
	once  sync.Once
}

func (h *postEcho) OnRead(c *Conn, data []byte) int {
	h.once.Do(func() { h.conns <- c })
	return h.lineEcho.OnRead(c, data)
}

func TestDeadlineCallsHandler(t *testing.T) {
	h := &lineEcho{closeErrs: make(chan error, 1)}
	e := startLines(t, h, 1)
	c := dialEngine(t, e)
	c.Write([]byte("deadline\n"))
	got, err := io.ReadAll(c) // echo, then "timeout", then FIN
	require.NoError(t, err)
	require.Equal(t, "deadline\ntimeout\n", string(got))
	c.Close()
	require.ErrorIs(t, <-h.closeErrs, ErrPeerClosed)
	require.Equal(t, int32(1), h.deadlines.Load())
}

// TestShutdownReadsThenCloses: data the client sent before Shutdown is
// echoed, then OnShutdown's goodbye, then FIN; Shutdown returns once the
// client has closed, and every descriptor is released.
func TestShutdownReadsThenCloses(t *testing.T) {
	h := &lineEcho{}
	e := startLines(t, h, 2)
	c := dialEngine(t, e)
	c.Write([]byte("last words\n"))
	time.Sleep(50 * time.Millisecond) // in the server's socket, maybe not yet read
	shut := shutdownAsync(e, 5*time.Second)
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "last words\nbye\n", string(got))
	c.Close()
	awaitShutdown(t, shut, "after the last words")
	require.Equal(t, h.opened.Load(), h.closed.Load())
	for _, l := range e.Loops() {
		require.True(t, l.closed.Load(), "loop %d not released", l.Index())
	}
}

// TestNotSupportedElsewhere: where there is no poller, New fails with
// ErrUnsupported (naming the platform) and leaves nothing open. The builds
// with a poller skip it; scripts/test.sh runs it on Linux with -tags
// noreactor, which compiles poll_other.go in place of the epoll files.
func TestNotSupportedElsewhere(t *testing.T) {
	if hasPoller {
		t.Skipf("%s has a poller; run with -tags noreactor to test the unsupported path", runtime.GOOS)
	}
	g0 := runtime.NumGoroutine()
	e, err := New(Config{Addr: "127.0.0.1:0"}, &lineEcho{})
	require.ErrorIs(t, err, ErrUnsupported)
	require.ErrorContains(t, err, runtime.GOOS+"/"+runtime.GOARCH)
	require.Nil(t, e)
	require.Equal(t, -1, FileLimit())
	require.Equal(t, g0, runtime.NumGoroutine())
}

// readSizes records the largest OnRead a connection saw; it consumes all.
type readSizes struct {
	lineEcho
	largest atomic.Int64
	total   atomic.Int64
}

func (h *readSizes) OnRead(c *Conn, data []byte) int {
	if n := int64(len(data)); n > h.largest.Load() {
		h.largest.Store(n)
	}
	h.total.Add(int64(len(data)))
	return len(data)
}

// TestReadBufferSize: Config.ReadBufferSize is the most one read takes
// (so a 60 KiB burst reaches the handler in pieces of at most 4 KiB, some
// of them full), and sizes outside its range are refused by New with an
// error naming the range.
func TestReadBufferSize(t *testing.T) {
	for _, bad := range []int{-1, MinReadBuffer - 1, MaxReadBuffer + 1} {
		_, err := New(Config{Addr: "127.0.0.1:0", ReadBufferSize: bad}, &lineEcho{})
		require.ErrorContains(t, err, "want 4096..67108864 bytes", "ReadBufferSize %d", bad)
	}
	h := &readSizes{}
	e, err := New(Config{Addr: "127.0.0.1:0", ReadBufferSize: 4096}, h)
	require.NoError(t, err)
	e.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	c := dialEngine(t, e)
	const burst = 60 << 10
	_, err = c.Write(bytes.Repeat([]byte("x"), burst))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.total.Load() == burst }, 10*time.Second, time.Millisecond)
	st := e.Loops()[0].Stats()
	t.Logf("%d bytes in %d reads, the largest %d", st.BytesIn, st.ReadCalls, h.largest.Load())
	require.Equal(t, int64(4096), h.largest.Load(), "the largest read with a 4 KiB read buffer")
	require.GreaterOrEqual(t, st.ReadCalls, uint64(burst/4096))
}
