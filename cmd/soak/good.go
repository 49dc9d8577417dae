package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// The good clients: conversers (random messages, pipelined), two big
// clients (2 MiB messages, fragmented or written in pieces) and the probe
// (probe.go).
// Every echo is checked byte for byte. A good message the server refused
// (close 1013) counts in stats.refused, one lost with its connection in
// stats.dropped.

// goodClient sends messages of random size and kind, and checks each echo
// byte for byte and in order, until stopGood.
func goodClient(id int) {
	for !stopGood.Load() {
		c, err := wstest.DialTimeout(*addr, 10*time.Second)
		if err != nil {
			stats.dropped.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !converse(c, id) {
			stats.dropped.Add(1)
		}
		c.Close()
	}
}

// converse runs one connection; false if the server dropped it.
func converse(c *wstest.Client, id int) bool {
	nc := c.Conn()
	rng := mrand.New(mrand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	type pending struct {
		op gws.OpCode
		p  []byte
	}
	queue := make(chan pending, 8)
	errc := make(chan error, 1)
	go func() { // reader: verify in order
		for want := range queue {
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			f, err := c.ReadFrame()
			if err == nil {
				err = closed(f)
			}
			if err != nil {
				errc <- err
				return
			}
			if f.Op != want.op || !f.Fin || !bytes.Equal(f.Payload, want.p) {
				stats.corrupt.Add(1)
			} else {
				echoed()
			}
		}
		errc <- nil
	}()
	ok := true
	for !stopGood.Load() && ok {
		n := 1 + rng.IntN(1<<rng.IntN(17)) // 1 B .. 64 KiB, skewed small
		p := make([]byte, n)
		op := gws.OpBinary
		if rng.IntN(2) == 0 {
			op = gws.OpText
			for i := range p {
				p[i] = 'a' + byte(rng.IntN(26))
			}
		} else {
			rand.Read(p)
		}
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(wstest.Data(op, true, p)); err != nil {
			ok = false
			break
		}
		stats.sent.Add(1)
		select {
		case queue <- pending{op, p}:
		case <-errc:
			ok = false
		}
		// Paced, so that the generator leaves the CPUs to the server (and
		// the probe's times say something about the server).
		time.Sleep(5 * time.Millisecond)
	}
	close(queue)
	if err := <-errc; err != nil {
		ok = false
	}
	if ok {
		goodbye(c)
	}
	return ok
}

// echoed counts a good message echoed byte for byte.
func echoed() {
	stats.echoed.Add(1)
	stats.perPhase[phase.Load()].Add(1)
}

// closed turns a close frame where an echo was expected into an error,
// counting a refusal (1013: the server had no memory for the message).
func closed(f wstest.Frame) error {
	if f.Op != gws.OpClose {
		return nil
	}
	code := 0
	if len(f.Payload) >= 2 {
		code = int(binary.BigEndian.Uint16(f.Payload))
	}
	if code == 1013 {
		stats.refused.Add(1)
	}
	return fmt.Errorf("closed with %d %q", code, f.Payload[min(2, len(f.Payload)):])
}

// goodbye runs the closing handshake.
func goodbye(c *wstest.Client) {
	c.Conn().SetDeadline(time.Now().Add(5 * time.Second))
	c.Conn().Write(wstest.Close(1000, ""))
	c.ReadFrame()
}

// bigClient sends 2 MiB messages, in turn as 32 fragments of 64 KiB and as
// one frame written 64 KiB at a time: the messages a server that reserved
// memory ahead of the bytes refused (issue 14, point 1).
func bigClient(id int) {
	p := wstest.Payload(2<<20, uint64(id))
	wires := [2][]byte{wstest.Fragments(gws.OpBinary, p, 64<<10), wstest.Binary(p)}
	got := make([]byte, len(p))
	for i := 0; !stopGood.Load(); i++ {
		c, err := wstest.DialTimeout(*addr, 10*time.Second)
		if err != nil {
			stats.dropped.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ; !stopGood.Load(); i++ {
			if !bigEcho(c, wires[i%2], p, got) {
				stats.dropped.Add(1)
				break
			}
		}
		if stopGood.Load() {
			goodbye(c)
		}
		c.Close()
	}
}

// bigEcho sends one big message in 64 KiB writes and checks its echo.
func bigEcho(c *wstest.Client, wire, p, got []byte) bool {
	nc := c.Conn()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(wire); off += 64 << 10 {
			if _, err := nc.Write(wire[off:min(off+64<<10, len(wire))]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	stats.sent.Add(1)
	op, n, err := readInto(c, got)
	if werr := <-errc; err == nil {
		err = werr
	}
	if err != nil {
		return false
	}
	if op != gws.OpBinary || !bytes.Equal(got[:n], p) {
		stats.corrupt.Add(1)
	} else {
		echoed()
	}
	time.Sleep(50 * time.Millisecond)
	return true
}

// quantiles returns the count, median, 99th percentile and maximum of ds.
func quantiles(ds []time.Duration) (n int, p50, p99, max time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return len(s), at(0.5), at(0.99), s[len(s)-1]
}
