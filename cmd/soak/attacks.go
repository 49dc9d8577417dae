package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// The attacks of issue 14, one window each. An attack comes from its own
// loopback address (127.0.0.0/8 is all loopback on Linux), as attackers do,
// so that the per-address shares of the server are what stands between it
// and the good clients on 127.0.0.1. Each runs until its window ends and
// returns nil when the server answered it as it should.
type attackKind struct {
	name  string
	local string // source address
	run   func(addr, local string, until time.Time) error
}

var attackList = []attackKind{
	{"reserve", "127.0.0.2", reserve},
	{"bare-tcp", "127.0.0.3", bareTCP},
	{"never-reads", "127.0.0.4", neverReadsBig},
	{"heavy-echo", "127.0.0.5", heavyEcho},
	{"pushers", "127.0.0.6", pushers},
}

func attackNames() []string {
	var names []string
	for _, a := range attackList {
		names = append(names, a.name)
	}
	return names
}

// pickAttacks returns the attacks named in list, in its order.
func pickAttacks(list string) ([]attackKind, error) {
	var out []attackKind
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		found := false
		for _, a := range attackList {
			if a.name == name {
				out, found = append(out, a), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown attack %q (have %s)", name, strings.Join(attackNames(), ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no attacks")
	}
	return out, nil
}

// dialFrom opens a TCP connection to addr from local.
func dialFrom(addr, local string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// upgradeFrom opens a WebSocket connection to addr from local.
func upgradeFrom(addr, local string) (*wstest.Client, error) {
	nc, err := dialFrom(addr, local)
	if err != nil {
		return nil, err
	}
	c := wstest.NewClient(nc)
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(addr); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// parallel runs n calls of f on 16 goroutines and returns the first error.
func parallel(n int, f func(i int) error) error {
	var next atomic.Int32
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// reserve (point 1): 600 connections each send a header announcing a
// 16 MiB frame and 2 bytes of it, and 300 more a fragment announcing 4 KiB
// to 2 MiB and 16 bytes of it; all hold until the window ends. A server
// that reserved memory from headers filled its 1 GiB budget and its pool
// classes with 21 KB sent and refused the big good clients' messages
// (1013). The connections must still be open at the end (they did nothing
// wrong yet).
func reserve(addr, local string, until time.Time) error {
	const n, mid = 600, 300
	conns := make([]*wstest.Client, n+mid)
	rest := make([][]byte, n+mid) // each one's payload bytes, masked
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	err := parallel(n+mid, func(i int) error {
		c, err := upgradeFrom(addr, local)
		if err != nil {
			return err
		}
		conns[i] = c
		f := wstest.Frame{Fin: true, Op: gws.OpBinary, RawLen: true, Length: 16 << 20, Payload: []byte{1, 2}}
		if i >= n { // a mid-size first fragment
			f = wstest.Frame{Op: gws.OpBinary, RawLen: true, Length: 4096 << (i % 10), Payload: make([]byte, 16)}
		}
		wire := f.Bytes()
		head := len(wire) - len(f.Payload)
		rest[i] = wire[head:]
		_, err = c.Conn().Write(wire[:head])
		return err
	})
	if err != nil {
		return fmt.Errorf("opening the reservers: %w", err)
	}
	// The payload bytes come in a read of their own, after the header:
	// a server that reads large payloads straight into a buffer sized
	// ahead of them takes one now.
	time.Sleep(100 * time.Millisecond)
	err = parallel(n+mid, func(i int) error {
		_, err := conns[i].Conn().Write(rest[i])
		return err
	})
	if err != nil {
		return fmt.Errorf("sending the reservers' bytes: %w", err)
	}
	time.Sleep(time.Until(until))
	open := 0
	for _, c := range conns {
		c.Conn().SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Reader().Peek(1); isTimeout(err) {
			open++
		}
	}
	if open != len(conns) {
		return fmt.Errorf("%d of %d reservers were closed", len(conns)-open, len(conns))
	}
	return nil
}

// bareTCP (point 3): keeps 400 TCP connections from one address that never
// send a byte, opening new ones as the server drops them (handshake
// timeout) or refuses them at accept. The server must refuse most at
// accept (its per-address handshake cap) while the probe keeps connecting.
func bareTCP(addr, local string, until time.Time) error {
	const n = 400
	var refused, held atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(until) {
				nc, err := dialFrom(addr, local)
				if err != nil {
					refused.Add(1) // reset so fast that connect saw it
					time.Sleep(50 * time.Millisecond)
					continue
				}
				nc.SetReadDeadline(until)
				t0 := time.Now()
				_, err = nc.Read(make([]byte, 1))
				nc.Close()
				if !isTimeout(err) && time.Since(t0) < 500*time.Millisecond {
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
				} else {
					held.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("  bare-tcp: %d connections refused at accept, %d held until dropped or the window ended\n", refused.Load(), held.Load())
	if refused.Load() == 0 {
		return errors.New("no bare connection was refused: the per-address handshake cap did nothing")
	}
	return nil
}

// neverReadsBig (point 4): 4 clients send 10 MiB of messages and never
// read. The server must drop each within its write stall timeout of the
// last byte it could send, though 10 MiB is far below its write queue
// limit.
func neverReadsBig(addr, local string, until time.Time) error {
	return stopReading(addr, local, 4, 10<<20, 64<<10)
}

// pushers (point 5): 40 clients each push a 4 MiB message and never read.
// They must be dropped within the write stall timeout, while the probe's
// small messages and new connections keep their latency.
func pushers(addr, local string, until time.Time) error {
	return stopReading(addr, local, 40, 4<<20, 4<<20)
}

// stopReading runs n clients that send total bytes in messages of msg
// bytes and never read, and checks that the server drops each within the
// write stall timeout (plus a tick and our detection) of the moment its
// replies stopped moving. A client cannot tell that moment without
// reading, so it bounds it by the end of its own sends: the server reads
// them all and queues the echoes as it goes.
func stopReading(addr, local string, n, total, msg int) error {
	var worst atomic.Int64
	var fails atomic.Int32
	var firstErr atomic.Value
	payload := wstest.Payload(msg, 7)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d, err := stopReader(addr, local, total, payload)
			if err != nil {
				fails.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			for old := worst.Load(); int64(d) > old && !worst.CompareAndSwap(old, int64(d)); old = worst.Load() {
			}
		})
	}
	wg.Wait()
	fmt.Printf("  %d clients not reading: dropped at most %s after their last send (write stall timeout %s)\n",
		n, time.Duration(worst.Load()).Round(10*time.Millisecond), *stall)
	if f := fails.Load(); f > 0 {
		return fmt.Errorf("%d of %d: %v", f, n, firstErr.Load())
	}
	return nil
}

// stopReader is one client of stopReading: it returns how long after its
// last send the server dropped it. It notices the drop by writing a small
// message every 100 ms: a socket the server closed answers with a reset.
func stopReader(addr, local string, total int, payload []byte) (time.Duration, error) {
	c, err := upgradeFrom(addr, local)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	nc := c.Conn()
	nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	frame := wstest.Binary(payload)
	for sent := 0; sent < total; sent += len(payload) {
		nc.SetWriteDeadline(time.Now().Add(*stall + 5*time.Second))
		if _, err := nc.Write(frame); err != nil {
			return 0, fmt.Errorf("the server stopped reading after %d of %d bytes: %w", sent, total, err)
		}
	}
	last := time.Now()
	tick := wstest.Binary([]byte{1})
	deadline := last.Add(*stall + 5*time.Second)
	for time.Now().Before(deadline) {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(tick); err != nil && !isTimeout(err) {
			return time.Since(last), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("still open %s after its last send (write stall timeout %s)", time.Since(last).Round(time.Second), *stall)
}

// heavyEcho (point 5): 4 clients echo 16 MiB messages back to back,
// checking every byte, while the probe measures small messages on the
// same loops.
func heavyEcho(addr, local string, until time.Time) error {
	var echoes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			p := wstest.Payload(16<<20, uint64(i))
			frame := wstest.Binary(p)
			got := make([]byte, len(p))
			c, err := upgradeFrom(addr, local)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer c.Close()
			for time.Now().Before(until) {
				if err := oneBigEcho(c, frame, p, got); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				echoes.Add(1)
			}
			goodbye(c)
		})
	}
	wg.Wait()
	fmt.Printf("  heavy-echo: %d echoes of 16 MiB\n", echoes.Load())
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// oneBigEcho sends frame, which carries p, and checks the echo, read into
// got (the generator allocates nothing per message: its garbage
// collections would show in the probe's times).
func oneBigEcho(c *wstest.Client, frame, p, got []byte) error {
	nc := c.Conn()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	errc := make(chan error, 1)
	go func() { _, err := nc.Write(frame); errc <- err }()
	op, n, err := readInto(c, got)
	if werr := <-errc; err == nil {
		err = werr
	}
	switch {
	case err != nil:
		return err
	case op != gws.OpBinary || !bytes.Equal(got[:n], p):
		return fmt.Errorf("16 MiB echo differs (op %v, %d bytes)", op, n)
	}
	return nil
}

// readInto reads one unfragmented server frame into buf: its opcode and
// length. A close frame is an error (counted by closed if 1013).
func readInto(c *wstest.Client, buf []byte) (gws.OpCode, int, error) {
	h, err := gws.ReadHeader(c.Reader())
	if err != nil {
		return 0, 0, err
	}
	if h.Length > int64(len(buf)) || h.Masked {
		return 0, 0, fmt.Errorf("server frame of %d bytes (masked %v)", h.Length, h.Masked)
	}
	if _, err := io.ReadFull(c.Reader(), buf[:h.Length]); err != nil {
		return 0, 0, err
	}
	if h.OpCode == gws.OpClose {
		return 0, 0, closed(wstest.Frame{Op: gws.OpClose, Payload: buf[:h.Length]})
	}
	return h.OpCode, int(h.Length), nil
}
