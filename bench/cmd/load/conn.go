package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// wsGUID is the key suffix of RFC 6455 §1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dial opens a TCP connection from src to addr and performs the opening
// handshake, offering permessage-deflate when offer is not empty (the
// server must then accept it). The returned reader may already hold bytes
// after the response.
func dial(ctx context.Context, src netip.Addr, addr, path, offer string, bufSize int) (net.Conn, *bufio.Reader, *deflateParams, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n"
	if offer != "" {
		req += "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	req += "\r\n"
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	br := bufio.NewReaderSize(c, bufSize)
	ext, err := readUpgrade(br, key)
	var z *deflateParams
	switch {
	case err == nil && offer != "" && ext == "":
		err = errors.New("load: the server declined permessage-deflate")
	case err == nil && offer != "":
		z, err = parseDeflateResponse(ext)
	}
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	c.SetDeadline(time.Time{})
	return c, br, z, nil
}

// readUpgrade reads the server's response up to its blank line and checks the
// status and Sec-WebSocket-Accept (RFC 6455 §4.1, client requirements 1–4).
// It returns the Sec-WebSocket-Extensions value ("" without one).
func readUpgrade(br *bufio.Reader, key string) (string, error) {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return "", fmt.Errorf("load: read handshake status: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		return "", fmt.Errorf("load: handshake refused: %q", bytes.TrimSpace(status))
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	want := base64.StdEncoding.EncodeToString(sum[:])
	accepted := false
	ext := ""
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", fmt.Errorf("load: read handshake headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		switch {
		case ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")):
			accepted = string(bytes.TrimSpace(value)) == want
		case ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Extensions")):
			ext = string(bytes.TrimSpace(value))
		}
	}
	if !accepted {
		return "", errors.New("load: handshake without a valid Sec-WebSocket-Accept")
	}
	return ext, nil
}

// stats are one connection's counters; the main goroutine sums them.
type stats struct {
	echoed     atomic.Uint64 // messages whose echo was verified
	mismatches atomic.Uint64 // echoes that differed from what was sent
	wireBytes  atomic.Uint64 // payload bytes of compressed echoes
}

func count(c *atomic.Uint64, n uint64) { c.Add(n) }

// loadConn drives one connection: a writer goroutine sends while it holds
// credits (at most inflight messages unanswered), a reader verifies every echo
// in order and hands the credit back.
type loadConn struct {
	r       *run
	c       net.Conn
	br      *bufio.Reader
	msg     *message
	frame   *clientFrame
	z       *inflater      // permessage-deflate negotiated; nil otherwise
	sent    []atomic.Int64 // send time of seq, indexed seq % inflight
	credits atomic.Int64
	wake    chan struct{}
	// A ping's payload waits here for the writer to answer it.
	pongMu   sync.Mutex
	pongData []byte
	pongDue  atomic.Bool
	st       stats
	// interval and phase pace the writer in fixed-rate mode (0 = pipelined).
	interval time.Duration
	phase    time.Duration
}

func (lc *loadConn) writeLoop() error {
	bw := bufio.NewWriterSize(lc.c, lc.r.cfg.bufSize)
	var seq uint64
	next := lc.r.start.Add(lc.phase)
	owed := false // in fixed-rate mode: a send fell due while no credit was left
	for !lc.r.stopping.Load() {
		if lc.pongDue.Load() {
			if err := lc.writePong(bw); err != nil {
				return err
			}
		}
		n := lc.credits.Swap(0)
		if n == 0 {
			owed = lc.interval > 0 && time.Until(next) <= 0
			select {
			case <-lc.wake:
			case <-lc.r.stop:
			}
			continue
		}
		// Pipelined sends of one batch leave in one flush: one clock read.
		batchTS := lc.r.now()
		for ; n > 0; n-- {
			ts := batchTS
			if lc.interval > 0 {
				if d := time.Until(next); d > 0 {
					if bw.Buffered() > 0 {
						if err := bw.Flush(); err != nil {
							return err
						}
					}
					time.Sleep(d)
				}
				// A send that waited for a credit (the server was behind)
				// counts from its intended time, so the server is charged for
				// the delay (no coordinated omission). Otherwise it counts from
				// the actual send: Go's timers may wake up to 1 ms late
				// (netpoll sleeps in whole milliseconds), which is the
				// generator's delay, not the server's.
				if owed {
					ts = next.Sub(lc.r.start).Nanoseconds()
					owed = time.Until(next) <= 0
				} else {
					ts = lc.r.now()
				}
				next = next.Add(lc.interval)
			}
			lc.sent[seq%uint64(len(lc.sent))].Store(ts)
			prefix, tail := lc.frame.set(seq)
			if _, err := bw.Write(prefix); err != nil {
				return err
			}
			if _, err := bw.Write(tail); err != nil {
				return err
			}
			seq++
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// pong hands the payload of a ping to the writer, which answers it (RFC 6455
// §5.5.3: a pong carries the ping's payload; only the latest need be answered).
func (lc *loadConn) pong(payload []byte) {
	lc.pongMu.Lock()
	lc.pongData = append(lc.pongData[:0], payload...)
	lc.pongMu.Unlock()
	lc.pongDue.Store(true)
	select {
	case lc.wake <- struct{}{}:
	default:
	}
}

// writePong writes the pending pong, masked, and flushes it.
func (lc *loadConn) writePong(bw *bufio.Writer) error {
	lc.pongMu.Lock()
	lc.pongDue.Store(false)
	// A zero mask key leaves the payload as it is; the key need not be
	// unpredictable for a load generator (RFC 6455 §5.3 guards proxies).
	frame := append([]byte{0x80 | opPong, 0x80 | byte(len(lc.pongData)), 0, 0, 0, 0}, lc.pongData...)
	lc.pongMu.Unlock()
	if _, err := bw.Write(frame); err != nil {
		return err
	}
	return bw.Flush()
}

func (lc *loadConn) give() {
	if lc.credits.Add(1) == 1 {
		select {
		case lc.wake <- struct{}{}:
		default:
		}
	}
}

// readLoop verifies echoes as they arrive. A message may come in several
// frames (continuations); each chunk is compared in place in the read buffer,
// or, for a compressed echo, gathered and verified whole (inflater).
func (lc *loadConn) readLoop() error {
	br := lc.br
	size := int64(len(lc.msg.plain))
	var seq uint64
	var off int64 // payload bytes of message seq verified (or gathered, compressed) so far
	compressed := false
	for {
		b, err := br.Peek(2)
		if err != nil {
			return err
		}
		h, ok, err := parseHeader(b, lc.z != nil)
		for err == nil && !ok {
			b, err = br.Peek(len(b) + 2)
			if err == nil {
				h, ok, err = parseHeader(b, lc.z != nil)
			}
		}
		if err != nil {
			return err
		}
		br.Discard(h.size)
		switch {
		case h.op >= opClose:
			if h.length > 125 || !h.fin {
				return fmt.Errorf("load: control frame op %d with length %d, fin %v", h.op, h.length, h.fin)
			}
			body, err := br.Peek(int(h.length))
			if err != nil {
				return err
			}
			switch h.op {
			case opClose:
				code := 1005 // no status (RFC 6455 §7.1.5)
				if len(body) >= 2 {
					code = int(binary.BigEndian.Uint16(body))
				}
				return fmt.Errorf("load: server closed the connection: %d %q", code, body[min(2, len(body)):])
			case opPing:
				lc.pong(body)
			}
			br.Discard(int(h.length))
			continue
		case h.op != opContinuation && off > 0, h.op == opContinuation && off == 0 && !compressed,
			h.op != opContinuation && h.op != lc.msg.op:
			lc.st.mismatches.Add(1)
			return fmt.Errorf("%w: frame op %d fin %v at offset %d", errMismatch, h.op, h.fin, off)
		case h.op != opContinuation:
			compressed = h.rsv1
		}
		if compressed {
			if err := lc.gather(h); err != nil {
				return err
			}
			if !h.fin {
				continue
			}
			if err := lc.z.verify(lc.frame, seq); err != nil {
				lc.st.mismatches.Add(1)
				return err
			}
			compressed = false
			lc.echoed(seq)
			seq++
			continue
		}
		if off+h.length > size || h.fin && off+h.length != size {
			lc.st.mismatches.Add(1)
			return fmt.Errorf("%w: frame op %d fin %v length %d at offset %d of %d", errMismatch, h.op, h.fin, h.length, off, size)
		}
		for rem := h.length; rem > 0; {
			if br.Buffered() == 0 {
				if _, err := br.Peek(1); err != nil {
					return err
				}
			}
			n := int(min(rem, int64(br.Buffered())))
			chunk, _ := br.Peek(n)
			if !lc.frame.equalAt(seq, int(off), chunk) {
				lc.st.mismatches.Add(1)
				return fmt.Errorf("%w: message %d bytes %d..%d", errMismatch, seq, off, off+int64(n))
			}
			br.Discard(n)
			count(&lc.st.wireBytes, uint64(n))
			off += int64(n)
			rem -= int64(n)
		}
		if !h.fin {
			continue
		}
		lc.echoed(seq)
		seq++
		off = 0
	}
}

// echoed counts the verified echo of message seq and returns its credit.
func (lc *loadConn) echoed(seq uint64) {
	if lc.r.measuring.Load() {
		lc.r.hist.record(lc.r.now() - lc.sent[seq%uint64(len(lc.sent))].Load())
	}
	lc.st.echoed.Add(1)
	lc.give()
}

// gather appends a frame of a compressed echo to the inflater's message.
func (lc *loadConn) gather(h header) error {
	z := lc.z
	if int64(len(z.msg))+h.length > int64(2*len(lc.msg.plain)+1024) {
		lc.st.mismatches.Add(1)
		return fmt.Errorf("%w: compressed echo of %d bytes and more", errMismatch, int64(len(z.msg))+h.length)
	}
	for rem := int(h.length); rem > 0; {
		n := min(rem, lc.br.Buffered())
		if n == 0 {
			if _, err := lc.br.Peek(1); err != nil {
				return err
			}
			continue
		}
		chunk, _ := lc.br.Peek(n)
		z.msg = append(z.msg, chunk...)
		lc.br.Discard(n)
		rem -= n
	}
	count(&lc.st.wireBytes, uint64(h.length))
	return nil
}
