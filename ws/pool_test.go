package ws

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/hugepage"
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
// buffer and reassembled messages alike) and releases it later from another
// goroutine; the echoes are byte-exact, and every pool buffer is back after
// shutdown.
func TestRetainedPayloadOutlivesHandler(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ListenAddr = "127.0.0.1:0"
	kept := make(chan Buffer, 4096)
	var got [][]byte
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
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
	require.NoError(t, srv.Shutdown())
	require.NoError(t, <-runErr)
	close(kept)
	<-done
	mu.Lock()
	require.Equal(t, sent, got, "retained payloads changed after the handler returned")
	mu.Unlock()
	require.Zero(t, srv.PoolsInUse(), "pool buffers not returned")
}

// TestPoolGetsHugetlbWhenReserved reserves huge pages (as root), starts a
// server and checks its pool is backed by hugetlb pages; the reservation is
// restored afterwards. Without root it skips: TestPoolOnPlannedNode covers
// the fallback.
func TestPoolGetsHugetlbWhenReserved(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to reserve huge pages")
	}
	const path = "/proc/sys/vm/nr_hugepages"
	old, err := os.ReadFile(path)
	require.NoError(t, err)
	oldN, _ := strconv.Atoi(strings.TrimSpace(string(old)))
	classes := []hugepage.Class{{Size: 64 << 10, Count: 32}, {Size: 256 << 10, Count: 8}} // 4 MiB: 2 huge pages
	if err := os.WriteFile(path, []byte(strconv.Itoa(oldN+4)), 0); err != nil {
		t.Skipf("cannot reserve huge pages: %v", err)
	}
	t.Cleanup(func() { os.WriteFile(path, old, 0) })
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.PoolClasses = classes
	srv := startServer(t, cfg, echoHandler)
	st := srv.PoolStats()
	require.Len(t, st, 1)
	if st[0].Pages != hugepage.PageHugetlb.String() {
		t.Skipf("the kernel did not reserve the pages: %+v", st[0])
	}
	require.Equal(t, 2<<20, st[0].PageSize)
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
