package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// The malformed clients that keep coming all through the hostile phase,
// one kind after another, each checking the server's answer.

// A hostile kind: what it does, and whether the server answered right.
type kind struct {
	name string
	run  func(addr string) error // nil: answered correctly
}

var kinds = []kind{
	{"slowloris handshake", slowloris},
	{"garbage bytes", garbage},
	{"wrong version (426)", wrongVersion},
	{"oversized frame (1009)", expectClose(1009, func() []byte {
		return wstest.Frame{Fin: true, Op: gws.OpBinary, RawLen: true, Length: 1 << 32}.Bytes() // 4 GiB announced
	})},
	{"invalid UTF-8 (1007)", expectClose(1007, func() []byte { return wstest.Text([]byte("ok\xed\xa0\x80")) })},
	{"unmasked frame (1002)", expectClose(1002, func() []byte {
		return wstest.Frame{Fin: true, Op: gws.OpBinary, Payload: []byte("no mask"), Unmasked: true}.Bytes()
	})},
	{"reserved opcode (1002)", expectClose(1002, func() []byte { return wstest.Data(3, true, nil) })},
	{"reset mid-frame", resetMidFrame},
	{"never reads (1008)", neverReads},
}

func slowloris(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte{req[i%len(req)]}); err != nil {
			return nil // dropped by the server: answered
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			return nil // EOF or reset: answered
		}
	}
	return errors.New("a handshake trickling for 30 s was never dropped")
}

func garbage(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	b := make([]byte, 600)
	rand.Read(b)
	copy(b[len(b)-4:], "\r\n\r\n")
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil && resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return nil
	}
	if err != nil && !isTimeout(err) {
		return nil // closed without a response: also an answer to garbage
	}
	return fmt.Errorf("garbage got %v %v", resp, err)
}

func wrongVersion(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, strings.Replace(wstest.Request(addr, wstest.NewKey()), "Version: 13", "Version: 8", 1))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != 426 || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		return fmt.Errorf("wrong version got %d %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Version"))
	}
	return nil
}

func expectClose(code int, payload func() []byte) func(string) error {
	return func(addr string) error {
		c, err := wstest.DialTimeout(addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.Conn().SetDeadline(time.Now().Add(5 * time.Second))
		c.Conn().Write(payload())
		f, err := c.ReadFrame()
		if err != nil {
			return fmt.Errorf("no close frame: %w", err)
		}
		if p := f.Payload; f.Op != gws.OpClose || len(p) < 2 || int(binary.BigEndian.Uint16(p)) != code {
			return fmt.Errorf("got %v, want close %d", f, code)
		}
		return nil
	}
}

func resetMidFrame(addr string) error {
	c, err := wstest.DialTimeout(addr, 10*time.Second)
	if err != nil {
		return err
	}
	f := wstest.Binary(make([]byte, 10000))
	c.Conn().Write(f[:5000])
	c.Conn().(*net.TCPConn).SetLinger(0)
	return c.Close() // nothing to expect: the server must simply survive it
}

// neverReads floods echoes it never reads until the server gives up on it
// (1008 then close), within a bound.
func neverReads(addr string) error {
	c, err := wstest.DialTimeout(addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	nc := c.Conn()
	nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	msg := wstest.Binary(make([]byte, 64<<10))
	limit := 64 * (*maxQueue + (16 << 20)) / (64 << 10) // far more than queue + socket buffers
	// The server gives up on it at its queue limit (1008) or once its queue
	// stops moving for the stall timeout, whichever comes first.
	deadline := time.Now().Add(max(20*time.Second, *stall+10*time.Second))
	for i := 0; i < limit && time.Now().Before(deadline); i++ {
		nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(msg); err != nil {
			break // the server stopped reading us: it has given up
		}
	}
	// Now read: echoes, then the 1008, or the connection gone (cut after
	// the linger timeout because we did not read in time).
	nc.SetReadDeadline(time.Now().Add(max(20*time.Second, *stall+10*time.Second)))
	for {
		f, err := c.ReadFrame()
		if err != nil {
			if isTimeout(err) {
				return errors.New("the server kept a client that never reads")
			}
			return nil // cut: answered
		}
		if p := f.Payload; f.Op == gws.OpClose {
			if len(p) >= 2 && binary.BigEndian.Uint16(p) == 1008 {
				return nil
			}
			return fmt.Errorf("closed with %q, want 1008", p)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// results counts hostile clients answered right and wrong, by kind.
type results struct {
	mu   sync.Mutex
	ok   map[string]int
	bad  map[string]int
	last map[string]error
}

func newResults() *results {
	return &results{ok: map[string]int{}, bad: map[string]int{}, last: map[string]error{}}
}

func (r *results) add(kind string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad[kind]++
		r.last[kind] = err
		return
	}
	r.ok[kind]++
}
