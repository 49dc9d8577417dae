// Command wsclient is the Linux side of scripts/wine-test.sh's echo interop
// run: it talks to an echo server (echo.exe under wine) over loopback and
// prints one line per check and a summary, exiting 1 if a check failed.
//
//	wsclient -addr 127.0.0.1:9001           run the checks
//	wsclient -addr 127.0.0.1:9001 -hold     open one connection, print "held",
//	                                        then expect the server's close 1001
//	                                        (the server is being shut down)
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func main() {
	addr := flag.String("addr", "", "echo server address")
	hold := flag.Bool("hold", false, "hold one connection until the server closes it with 1001")
	conns := flag.Int("conns", 32, "concurrent connections for the load check")
	msgs := flag.Int("msgs", 100, "messages per connection for the load check")
	flag.Parse()
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "wsclient: -addr is required")
		os.Exit(2)
	}
	if *hold {
		if err := holdUntilClose(*addr); err != nil {
			fmt.Println("FAIL hold:", err)
			os.Exit(1)
		}
		fmt.Println("PASS hold: server closed with 1001")
		return
	}
	checks := []struct {
		name string
		fn   func(string) error
	}{
		{"text and binary messages, 0 B to 1 MiB", echoSizes},
		{"fragmented message is echoed whole", fragmented},
		{"ping gets its pong", ping},
		{"close handshake 1000", closeNormal},
		{"invalid UTF-8 gets close 1007", badUTF8},
		{"unmasked client frame gets close 1002", unmasked},
		{"plain HTTP request is refused", plainHTTP},
		{fmt.Sprintf("%d connections x %d messages at once", *conns, *msgs), func(a string) error { return load(a, *conns, *msgs) }},
	}
	failed := 0
	for _, c := range checks {
		t0 := time.Now()
		if err := c.fn(*addr); err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", c.name, err)
			continue
		}
		fmt.Printf("PASS %s (%v)\n", c.name, time.Since(t0).Round(time.Millisecond))
	}
	fmt.Printf("wsclient: %d passed, %d failed\n", len(checks)-failed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func dial(addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, _, err := gws.Dial(ctx, "ws://"+addr+"/")
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, nil
}

func roundTrip(c net.Conn, op gws.OpCode, p []byte) error {
	if err := wsutil.WriteClientMessage(c, op, p); err != nil {
		return err
	}
	got, gop, err := wsutil.ReadServerData(c)
	if err != nil {
		return err
	}
	if gop != op || !bytes.Equal(got, p) {
		return fmt.Errorf("sent %v %d bytes, got %v %d bytes (equal %v)", op, len(p), gop, len(got), bytes.Equal(got, p))
	}
	return nil
}

func echoSizes(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 100000, 1 << 20} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
		if err := roundTrip(c, gws.OpBinary, p); err != nil {
			return fmt.Errorf("binary %d: %w", n, err)
		}
		if err := roundTrip(c, gws.OpText, bytes.Repeat([]byte("é"), n/2)); err != nil {
			return fmt.Errorf("text %d: %w", n, err)
		}
	}
	return nil
}

func fragmented(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	parts := [][]byte{[]byte("Hello, "), []byte("frag"), []byte("mented world")}
	for i, p := range parts {
		f := gws.NewFrame(gws.OpContinuation, i == len(parts)-1, p)
		if i == 0 {
			f.Header.OpCode = gws.OpText
		}
		if err := gws.WriteFrame(c, gws.MaskFrameInPlace(f)); err != nil {
			return err
		}
	}
	got, op, err := wsutil.ReadServerData(c)
	if err != nil {
		return err
	}
	if op != gws.OpText || string(got) != "Hello, fragmented world" {
		return fmt.Errorf("got %v %q", op, got)
	}
	return nil
}

func ping(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := wsutil.WriteClientMessage(c, gws.OpPing, []byte("are you there")); err != nil {
		return err
	}
	h, p, err := readFrame(c)
	if err != nil {
		return err
	}
	if h.OpCode != gws.OpPong || string(p) != "are you there" {
		return fmt.Errorf("got %v %q", h.OpCode, p)
	}
	return nil
}

// expectClose reads until a close frame and checks its code; the server
// must then close the TCP connection.
func expectClose(c net.Conn, code gws.StatusCode) error {
	for {
		h, p, err := readFrame(c)
		if err != nil {
			return fmt.Errorf("waiting for close %d: %w", code, err)
		}
		if h.OpCode != gws.OpClose {
			continue
		}
		got, _ := gws.ParseCloseFrameData(p)
		if got != code {
			return fmt.Errorf("close code %d, want %d", got, code)
		}
		wsutil.WriteClientMessage(c, gws.OpClose, p[:min(len(p), 2)])
		if _, err := io.Copy(io.Discard, c); err != nil {
			return fmt.Errorf("after close: %w", err)
		}
		return nil
	}
}

func readFrame(c net.Conn) (gws.Header, []byte, error) {
	h, err := gws.ReadHeader(c)
	if err != nil {
		return h, nil, err
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(c, p)
	return h, p, err
}

func closeNormal(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := wsutil.WriteClientMessage(c, gws.OpClose, gws.NewCloseFrameBody(gws.StatusNormalClosure, "bye")); err != nil {
		return err
	}
	return expectClose(c, gws.StatusNormalClosure)
}

func badUTF8(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := wsutil.WriteClientMessage(c, gws.OpText, []byte{'o', 'k', 0xff, 0xfe}); err != nil {
		return err
	}
	return expectClose(c, gws.StatusInvalidFramePayloadData)
}

func unmasked(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := gws.WriteFrame(c, gws.NewTextFrame([]byte("not masked"))); err != nil {
		return err
	}
	return expectClose(c, gws.StatusProtocolError)
}

func plainHTTP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
		return fmt.Errorf("got %q", b[:min(len(b), 40)])
	}
	return nil
}

func load(addr string, conns, msgs int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range msgs {
				p := fmt.Appendf(nil, "conn %d message %d %s", i, j, bytes.Repeat([]byte{'x'}, j*13))
				if err := roundTrip(c, gws.OpText, p); err != nil {
					errs <- fmt.Errorf("conn %d message %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func holdUntilClose(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := roundTrip(c, gws.OpText, []byte("hold")); err != nil {
		return err
	}
	fmt.Println("held")
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return expectClose(c, gws.StatusGoingAway)
}
