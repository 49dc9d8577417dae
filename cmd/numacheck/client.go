//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// echoSizes covers each payload-length encoding (7-bit, 16-bit, 64-bit)
// and buffers from several pool classes.
var echoSizes = []int{0, 1, 125, 126, 4096, 65535, 65536, 1 << 20}

// echoClients opens conns WebSocket connections to addr at once; each sends
// a text and a binary message of every size in echoSizes and checks that
// the same bytes come back with the same opcode. It returns how many
// messages came back.
func echoClients(addr string, conns int, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type result struct {
		n   int
		err error
	}
	res := make(chan result, conns)
	for i := range conns {
		go func() {
			n, err := echoOne(ctx, addr, uint64(i))
			res <- result{n, err}
		}()
	}
	total := 0
	var first error
	for range conns {
		r := <-res
		total += r.n
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	return total, first
}

func echoOne(ctx context.Context, addr string, seed uint64) (int, error) {
	conn, _, _, err := ws.Dial(ctx, "ws://"+addr+"/")
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	n := 0
	for _, size := range echoSizes {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
			msg := payload(rng, size, op == ws.OpText)
			if err := wsutil.WriteClientMessage(conn, op, msg); err != nil {
				return n, fmt.Errorf("write %v %d B: %w", op, size, err)
			}
			got, gotOp, err := wsutil.ReadServerData(conn)
			if err != nil {
				return n, fmt.Errorf("read echo of %v %d B: %w", op, size, err)
			}
			if gotOp != op || !bytes.Equal(got, msg) {
				return n, fmt.Errorf("echo of %v %d B came back as %v %d B (equal bytes: %v)",
					op, size, gotOp, len(got), bytes.Equal(got, msg))
			}
			n++
		}
	}
	// Close politely so the server logs the close with code 1000.
	_ = wsutil.WriteClientMessage(conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	_ = conn.(*net.TCPConn).CloseWrite()
	_, _, _ = wsutil.ReadServerData(conn)
	return n, nil
}

// payload is size random bytes; for text, random printable ASCII (valid UTF-8).
func payload(rng *rand.Rand, size int, text bool) []byte {
	b := make([]byte, size)
	for i := range b {
		if text {
			b[i] = byte(' ' + rng.IntN(95))
		} else {
			b[i] = byte(rng.Uint32())
		}
	}
	return b
}
