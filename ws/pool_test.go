package ws

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// TestPoolOnPlannedNode: the running server's pools are bound to the nodes
// its plan names (checked by the kernel, get_mempolicy/move_pages), and say
// which page kind they got. On a machine without reserved huge pages that is
// THP or base pages, and the fallback is explained.
func TestPoolOnPlannedNode(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		t.Skip("pools are bound on Linux")
	}
	cfg := DefaultConfig()
	srv := startServer(t, cfg, echoHandler)
	stats := srv.PoolStats()
	require.NotEmpty(t, stats)
	loopNodes := map[int]bool{}
	for _, l := range srv.Stats().Loops {
		loopNodes[l.Node] = true
	}
	for _, ps := range stats {
		require.True(t, loopNodes[ps.Node], "pool for node %d, where no loop runs", ps.Node)
		if ps.BindErr != "" {
			t.Logf("node %d: memory not bound: %s (seccomp?)", ps.Node, ps.BindErr)
			continue
		}
		require.True(t, ps.Bound, "pool for node %d not bound: %+v", ps.Node, ps)
		require.True(t, ps.OnNode, "pool pages not on node %d: %s", ps.Node, ps.Placement)
		require.NotEqual(t, hugepage.PageGoHeap.String(), ps.Pages)
		if ps.Pages != hugepage.PageHugetlb.String() {
			require.NotEmpty(t, ps.Fallbacks, "a fallback from hugetlb must say why")
		}
		t.Logf("node %d: %+v", ps.Node, ps)
	}
}

// TestRetainedPayloadOutlivesHandler: a handler keeps every payload (read
// buffer and reassembled messages alike) and releases it from another
// goroutine only after the server has shut down. The echoes are byte-exact;
// Shutdown reports the pool it could not unmap (ErrPoolsKept), whose memory
// stays valid for the holders; and every buffer is back once they release.
func TestRetainedPayloadOutlivesHandler(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ListenAddr = "127.0.0.1:0"
	kept := make(chan Buffer, 4096)
	var got [][]byte
	var mu sync.Mutex
	done := make(chan struct{})
	shutDown := make(chan struct{})
	go func() {
		defer close(done)
		<-shutDown
		for b := range kept {
			time.Sleep(time.Microsecond)
			mu.Lock()
			got = append(got, bytes.Clone(b.Bytes()))
			mu.Unlock()
			b.Release()
		}
	}()
	h := HandlerFunc(func(e *Event) error {
		if e.Kind != MessageEvent {
			return nil
		}
		kept <- e.Retain()
		return e.Conn.WriteMessage(e.Op, e.Data)
	})
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(h) }()

	c := wstest.Dial(t, srv.Addr().String())
	var sent [][]byte
	for i := 0; i < 200; i++ {
		p := []byte(fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte{'x'}, i*37)))
		sent = append(sent, p)
		if i%3 == 0 { // fragmented: reassembled in pool memory
			c.Write(t, wstest.Data(OpText, false, p[:len(p)/2]))
			c.Write(t, wstest.Data(gws.OpContinuation, true, p[len(p)/2:]))
		} else {
			c.Write(t, wstest.Text(p))
		}
	}
	for i := range sent {
		require.Equal(t, sent[i], c.Next(t).Payload, "echo %d", i)
	}
	c.Close()
	err = srv.Shutdown()
	require.ErrorIs(t, err, ErrPoolsKept, "Shutdown while the handler holds buffers")
	require.ErrorIs(t, err, hugepage.ErrInUse)
	require.Equal(t, err, <-runErr)
	close(shutDown)
	close(kept)
	<-done
	mu.Lock()
	require.Equal(t, sent, got, "retained payloads changed after the handler returned")
	mu.Unlock()
	require.Zero(t, srv.PoolsInUse(), "pool buffers not returned")
}

// TestPoolGetsHugetlbWhenReserved reserves huge pages on node 0 (as root;
// restored afterwards) and starts a one-loop server there: its pool must be
// backed by hugetlb pages and echo from them. It skips only where the
// reservation cannot be made (not root, not Linux, or the kernel could not
// free the pages); once the pages are reserved, a pool that falls back fails
// the test. TestPoolOnPlannedNode covers the fallback.
func TestPoolGetsHugetlbWhenReserved(t *testing.T) {
	testenv.ReserveHugePages(t, 2) // the pool below is 4 MiB: 2 huge pages
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.NUMANode = 0 // where the pages were reserved
	cfg.PoolClasses = []hugepage.Class{{Size: 64 << 10, Count: 32}, {Size: 256 << 10, Count: 8}}
	srv := startServer(t, cfg, echoHandler)
	st := srv.PoolStats()
	require.Len(t, st, 1)
	require.Equal(t, hugepage.PageHugetlb.String(), st[0].Pages, "2 huge pages were free for this 4 MiB pool: %+v", st[0])
	require.Equal(t, 2<<20, st[0].PageSize)
	require.Empty(t, st[0].Fallbacks)
	// And it echoes from that memory.
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	c.Write(t, wstest.Binary([]byte("from huge pages")))
	c.ExpectMessage(t, OpBinary, []byte("from huge pages"))
}

// TestZeroCopyEcho proves the fast path: a whole frame's payload is handed
// to the handler in the pool read buffer itself (same address as a retained
// view of that buffer), and a run of whole frames echoed to a reading
// client copies nothing (the copy counters stay 0).
func TestZeroCopyEcho(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	var sameAddr, checked atomic.Int32 // written by the loop, read by the test
	h := HandlerFunc(func(e *Event) error {
		if e.Kind != MessageEvent {
			return nil
		}
		if checked.Load() < 10 {
			b := e.Retain()
			if unsafe.SliceData(b.Bytes()) == unsafe.SliceData(e.Data) && !b.h.IsZero() {
				sameAddr.Add(1)
			}
			checked.Add(1)
			defer b.Release()
		}
		return e.Conn.WriteMessage(e.Op, e.Data)
	})
	srv := startServer(t, cfg, h)
	c := wstest.Dial(t, srv.Addr().String())
	defer c.Close()
	p := bytes.Repeat([]byte{7}, 100)
	frame := wstest.Binary(p)
	for i := 0; i < 100; i++ {
		c.Write(t, frame) // one whole frame per write: never split across reads
		c.ExpectMessage(t, OpBinary, p)
	}
	require.Equal(t, int32(10), sameAddr.Load(), "payload not in the pool read buffer")
	st := srv.Stats()
	require.Zero(t, st.Reassembled, "bytes copied to reassemble")
	for _, l := range st.Loops {
		require.Zero(t, l.CopiedIn, "partial input copied")
		require.Zero(t, l.CopiedOut, "output queued")
		require.Zero(t, l.HeapFallbacks, "buffers from the Go heap")
	}
}

// TestPoolBytes: Config.PoolBytes is what NewServer maps for each node's
// pool, so that a program can fit the pools into a memory limit first.
func TestPoolBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.PoolClasses = []hugepage.Class{{Size: 4096, Count: 16}, {Size: 128 << 10, Count: 20}}
	want, err := cfg.PoolBytes()
	require.NoError(t, err)
	require.EqualValues(t, 4<<20, want, "2.06 MiB of classes take two 2 MiB pages")
	srv := startServer(t, cfg, echoHandler)
	st := srv.PoolStats()
	require.NotEmpty(t, st)
	for _, p := range st {
		require.EqualValues(t, want, p.Bytes, "node %d", p.Node)
	}
	cfg.NoPool = true
	n, err := cfg.PoolBytes()
	require.NoError(t, err)
	require.Zero(t, n)
}
