package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoOpts shapes the test server's misbehaviour.
type echoOpts struct {
	// deflate accepts permessage-deflate and echoes compressed messages as
	// they came ("passthrough") or inflated and compressed again
	// ("recompress", keeping context); "" declines it.
	deflate   string
	corruptAt int           // flip one payload byte of this message (1-based; 0 = never)
	pingEvery int           // send a ping after every this many echoes (0 = never)
	pongs     *atomic.Int64 // counts pongs that carried the ping's payload
}

// echoServer is a minimal RFC 6455 echo server for the generator's tests.
func echoServer(t *testing.T, o echoOpts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveEcho(c, o)
		}
	}()
	return ln.Addr().String()
}

func serveEcho(c net.Conn, o echoOpts) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + wsGUID))
	ext := ""
	if o.deflate != "" && strings.HasPrefix(req.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		ext = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
		base64.StdEncoding.EncodeToString(sum[:])+"\r\n"+ext+"\r\n")
	var zw *flate.Writer // recompress: the server's compressor, keeping context
	var zout bytes.Buffer
	bw := bufio.NewWriter(c)
	for n := 1; ; n++ {
		var h [14]byte
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return
		}
		length := int(h[1] & 0x7f)
		switch length {
		case 126:
			io.ReadFull(br, h[2:4])
			length = int(binary.BigEndian.Uint16(h[2:]))
		case 127:
			io.ReadFull(br, h[2:10])
			length = int(binary.BigEndian.Uint64(h[2:]))
		}
		var key [4]byte
		io.ReadFull(br, key[:])
		p := make([]byte, length)
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		for i := range p {
			p[i] ^= key[i%4]
		}
		if h[0]&0x0f == opPong {
			if string(p) == "ping!" {
				o.pongs.Add(1)
			}
			n--
			continue
		}
		first := h[0] & 0x0f
		if h[0]&0x40 != 0 && o.deflate == "recompress" {
			plain, err := io.ReadAll(flate.NewReader(bytes.NewReader(append(p, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff))))
			if err != nil {
				return
			}
			zout.Reset()
			if zw == nil {
				zw, _ = flate.NewWriter(&zout, 1)
			}
			zw.Write(plain)
			zw.Flush()
			p = bytes.TrimSuffix(zout.Bytes(), []byte{0, 0, 0xff, 0xff})
		}
		if h[0]&0x40 != 0 {
			first |= 0x40
		}
		if n == o.corruptAt {
			p[len(p)/2] ^= 0x20
		}
		// Echo in two fragments to exercise continuation handling.
		half := len(p) / 2
		bw.Write([]byte{first, byte(half)})
		bw.Write(p[:half])
		bw.Write([]byte{0x80, byte(len(p) - half)})
		bw.Write(p[half:])
		if o.pingEvery > 0 && n%o.pingEvery == 0 {
			bw.Write([]byte{0x80 | opPing, 5})
			bw.WriteString("ping!")
		}
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

func testRun(t *testing.T, addr string, deflate ...string) result {
	t.Helper()
	cfg := config{addr: addr, path: "/", conns: 4, inflight: 4, size: 100, text: true, deflate: strings.Join(deflate, ""),
		warmup: 50 * time.Millisecond, duration: 200 * time.Millisecond,
		srcFrom: netip.MustParseAddr("127.0.0.1"), srcCount: 1, dialers: 2, bufSize: 4096}
	r := &run{cfg: cfg, stop: make(chan struct{})}
	conns, _, err := r.dialAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var res result
	r.measure(context.Background(), conns, &res)
	if p := r.firstErr.Load(); p != nil {
		res.Error = (*p).Error()
	}
	return res
}

func TestRunVerifiesEchoes(t *testing.T) {
	res := testRun(t, echoServer(t, echoOpts{}))
	if res.Msgs == 0 || res.Mismatches != 0 || res.ConnErrors != 0 || res.Error != "" {
		t.Fatalf("clean server: %+v", res)
	}
}

func TestRunAnswersPings(t *testing.T) {
	var pongs atomic.Int64
	res := testRun(t, echoServer(t, echoOpts{pingEvery: 10, pongs: &pongs}))
	if res.Msgs == 0 || res.Mismatches != 0 || res.ConnErrors != 0 || res.Error != "" {
		t.Fatalf("pinging server: %+v", res)
	}
	if pongs.Load() == 0 {
		t.Fatal("no ping was answered with its payload")
	}
}

// TestRunDeflate: compressed messages, echoed as they came or compressed
// again with context, verify; a corrupted compressed echo does not.
func TestRunDeflate(t *testing.T) {
	for _, mode := range []string{"passthrough", "recompress"} {
		res := testRun(t, echoServer(t, echoOpts{deflate: mode}), "permessage-deflate")
		if res.Msgs == 0 || res.Mismatches != 0 || res.ConnErrors != 0 || res.Error != "" || res.WireBytesMsg == 0 {
			t.Fatalf("%s: %+v", mode, res)
		}
		res = testRun(t, echoServer(t, echoOpts{deflate: mode, corruptAt: 3}), "permessage-deflate")
		if res.Mismatches == 0 {
			t.Fatalf("%s: corrupted compressed echo not caught: %+v", mode, res)
		}
	}
	r := &run{cfg: config{addr: echoServer(t, echoOpts{}), path: "/", conns: 1, deflate: "permessage-deflate",
		srcFrom: netip.MustParseAddr("127.0.0.1"), srcCount: 1, dialers: 1, bufSize: 4096}}
	if _, _, err := r.dialAll(context.Background()); err == nil || !strings.Contains(err.Error(), "declined permessage-deflate") {
		t.Fatalf("a server that declines: %v", err)
	}
}

func TestRunCatchesCorruptEcho(t *testing.T) {
	res := testRun(t, echoServer(t, echoOpts{corruptAt: 3}))
	if res.Mismatches == 0 || !strings.Contains(res.Error, "differs") {
		t.Fatalf("corrupting server not caught: %+v", res)
	}
}
