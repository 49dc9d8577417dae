package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// TestLoad1000Connections: 1,000 concurrent connections each echo 100
// messages of random size and type, every byte checked (issue 2). Each
// connection writes its messages in bursts of 10 before reading the 10
// echoes, so the server also sees many frames per read.
func TestLoad1000Connections(t *testing.T) {
	const (
		conns = 1000
		msgs  = 100
		burst = 10
		// A bound, not a speed target: 38 s alone under -race with the
		// 2 cores' load average at 12, over 45 s in a full make test run.
		maxTime = 3 * time.Minute
	)
	// 1,000 clients dialing at once from one address, as through a load
	// balancer: the per-address handshake cap is for the open internet.
	addr := startEcho(t, func(c *ws.Config) { c.MaxHandshakesPerIP = 0 })
	ctx, cancel := context.WithTimeout(context.Background(), maxTime)
	defer cancel()

	var (
		wg       sync.WaitGroup
		failures atomic.Int64
		firstErr sync.Once
		errMsg   error
		bytesOK  atomic.Int64
	)
	fail := func(err error) {
		failures.Add(1)
		firstErr.Do(func() { errMsg = err })
	}
	start := time.Now()
	// Connect everyone first, so that all 1,000 are open at once.
	ncs := make([]net.Conn, conns)
	readers := make([]io.Reader, conns)
	var dialWG sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		dialWG.Add(1)
		sem <- struct{}{}
		go func() {
			defer dialWG.Done()
			defer func() { <-sem }()
			nc, br, _, err := gws.Dialer{Timeout: wstest.Timeout}.Dial(ctx, "ws://"+addr+"/")
			if err != nil {
				fail(fmt.Errorf("conn %d: dial: %w", i, err))
				return
			}
			ncs[i] = nc
			readers[i] = nc
			if br != nil {
				readers[i] = io.MultiReader(br, nc)
			}
		}()
	}
	dialWG.Wait()
	t.Cleanup(func() {
		for _, nc := range ncs {
			if nc != nil {
				nc.Close()
			}
		}
	})
	require.Zero(t, failures.Load(), "dial failures, first: %v", errMsg)
	dialTime := time.Since(start)

	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loadConn(ctx, ncs[i], readers[i], uint64(i), msgs, burst, &bytesOK); err != nil {
				fail(fmt.Errorf("conn %d: %w", i, err))
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failures.Load(), "%d connections failed, first: %v", failures.Load(), errMsg)
	t.Logf("%d connections x %d messages echoed byte-exactly: %d payload bytes; dial %v, total %v",
		conns, msgs, bytesOK.Load(), dialTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

var loadBin = wstest.Payload(64<<10, 77)

// loadConn runs one connection's share of the load test and closes it
// with 1000, checking the server's answer.
func loadConn(ctx context.Context, nc net.Conn, r io.Reader, seed uint64, msgs, burst int, okBytes *atomic.Int64) error {
	dl, _ := ctx.Deadline()
	if err := nc.SetDeadline(dl); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	br := bufio.NewReaderSize(r, 32<<10)
	bw := bufio.NewWriterSize(nc, 32<<10)
	type sent struct {
		op gws.OpCode
		p  []byte
	}
	for done := 0; done < msgs; done += burst {
		var out []sent
		for range burst {
			n := rng.IntN(512)
			if rng.IntN(10) == 0 {
				n = rng.IntN(8 << 10)
			}
			// Binary payloads are random windows of one shared random
			// buffer; text ones are shared per size (built once).
			off := rng.IntN(len(loadBin) - n + 1)
			s := sent{op: gws.OpBinary, p: loadBin[off : off+n]}
			if rng.IntN(2) == 0 {
				s = sent{op: gws.OpText, p: bigPayload(true, n)}
			}
			out = append(out, s)
			if _, err := bw.Write(wstest.Frame{Fin: true, Op: s.op, Payload: s.p}.Bytes()); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		for k, s := range out {
			f, err := gws.ReadFrame(br)
			if err != nil {
				return fmt.Errorf("message %d: %w", done+k, err)
			}
			if f.Header.OpCode != s.op || !f.Header.Fin || f.Header.Masked || !bytes.Equal(f.Payload, s.p) {
				return fmt.Errorf("message %d: sent %v %d bytes, got %v %d bytes (fin %v), first difference at %d",
					done+k, s.op, len(s.p), f.Header.OpCode, len(f.Payload), f.Header.Fin, wstest.FirstDiff(s.p, f.Payload))
			}
			okBytes.Add(int64(len(s.p)))
		}
	}
	if _, err := nc.Write(wstest.Close(1000, "")); err != nil {
		return err
	}
	f, err := gws.ReadFrame(br)
	if err != nil {
		return fmt.Errorf("reading close: %w", err)
	}
	if f.Header.OpCode != gws.OpClose || !bytes.Equal(f.Payload, []byte{0x03, 0xe8}) {
		return fmt.Errorf("want close 1000, got %v %x", f.Header.OpCode, f.Payload)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("want EOF after close, got %v", err)
	}
	return nil
}
