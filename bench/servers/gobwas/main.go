// Command gobwas is the benchmark's echo server on github.com/gobwas/ws with
// its low-level API, as gobwas's README recommends for speed: ws.Upgrade on the
// raw net.Conn (no net/http), ws.ReadHeader into a reused buffer, in-place
// unmasking with ws.Cipher, and buffered writes flushed only when no further
// request is already buffered, so pipelined echoes share one write.
// github.com/mailru/easygo (netpoll) is not served by the module proxy here,
// so each connection has its own goroutine.
package main

import (
	"bufio"
	"flag"
	"io"
	"log"
	"net"

	"github.com/gobwas/ws"
)

const maxPayload = 64 << 20

func serve(c net.Conn) {
	defer c.Close()
	if _, err := ws.Upgrade(c); err != nil {
		return
	}
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	var payload []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil || h.Length > maxPayload {
			return
		}
		if int64(cap(payload)) < h.Length {
			payload = make([]byte, h.Length)
		}
		p := payload[:h.Length]
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpClose:
			ws.WriteFrame(bw, ws.NewCloseFrame(p))
			bw.Flush()
			return
		case ws.OpPing:
			h = ws.Header{Fin: true, OpCode: ws.OpPong, Length: h.Length}
		case ws.OpPong:
			continue
		default: // text, binary and continuation frames are echoed frame by frame
			h.Masked = false
		}
		if err := ws.WriteHeader(bw, h); err != nil {
			return
		}
		if _, err := bw.Write(p); err != nil {
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

func main() {
	addr := flag.String("addr", ":9001", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c)
	}
}
