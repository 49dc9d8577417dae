// Command gnet is the benchmark's echo server on github.com/panjf2000/gnet/v2
// with github.com/gobwas/ws framing. It follows gnet's advice for speed: one
// event loop per CPU (WithMulticore), all work in OnTraffic on the loop, no
// extra goroutines. Each OnTraffic unmasks every complete frame in place in
// gnet's read buffer and echoes them all with one Writev of
// (header, payload) pairs, so pipelined echoes share one syscall.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"log"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

const maxPayload = 64 << 20

type server struct {
	gnet.BuiltinEventEngine
}

// conn is the per-connection state kept in gnet.Conn's context.
type conn struct {
	upgraded bool
	hdrs     []byte   // encoded echo headers of this OnTraffic
	iov      [][]byte // header, payload, header, payload, …
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&conn{})
	return nil, gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*conn)
	if !st.upgraded {
		return s.upgrade(c, st)
	}
	return s.echo(c, st)
}

// upgrade runs gobwas's handshake once the whole request is buffered.
func (s *server) upgrade(c gnet.Conn, st *conn) gnet.Action {
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > 16<<10 {
			return gnet.Close
		}
		return gnet.None
	}
	var resp bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(buf[:end+4]), &resp}
	_, err := ws.Upgrade(rw)
	c.Write(resp.Bytes())
	if err != nil {
		return gnet.Close
	}
	c.Discard(end + 4)
	st.upgraded = true
	if c.InboundBuffered() > 0 {
		return s.echo(c, st)
	}
	return gnet.None
}

// echo answers every complete frame buffered on c. It looks at the first
// header alone before taking the whole buffer, because gnet's Peek copies when
// data spans its ring buffer: a large frame arriving in pieces is then copied
// once, when complete, not on every read.
func (s *server) echo(c gnet.Conn, st *conn) gnet.Action {
	buffered := c.InboundBuffered()
	hb, _ := c.Peek(min(buffered, ws.MaxHeaderSize))
	h, hl, ok := parseHeader(hb)
	if !ok || hl+int(h.Length) > buffered {
		if h.Length > maxPayload {
			return gnet.Close
		}
		return gnet.None
	}
	buf, _ := c.Peek(-1)
	st.hdrs, st.iov = st.hdrs[:0], st.iov[:0]
	type span struct{ hdr, from, to int }
	var spans [64]span
	frames := spans[:0]
	action := gnet.None
	off := 0
	for action == gnet.None {
		h, hl, ok := parseHeader(buf[off:])
		if !ok || off+hl+int(h.Length) > len(buf) {
			break
		}
		if h.Length > maxPayload {
			return gnet.Close
		}
		off += hl
		p := buf[off : off+int(h.Length)]
		off += int(h.Length)
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpClose:
			h = ws.Header{Fin: true, OpCode: ws.OpClose, Length: h.Length}
			action = gnet.Close
		case ws.OpPing:
			h = ws.Header{Fin: true, OpCode: ws.OpPong, Length: h.Length}
		case ws.OpPong:
			continue
		default: // text, binary and continuation frames are echoed frame by frame
			h.Masked = false
		}
		from := len(st.hdrs)
		st.hdrs = appendHeader(st.hdrs, h)
		frames = append(frames, span{from, off - int(h.Length), off})
	}
	for i, f := range frames {
		end := len(st.hdrs)
		if i+1 < len(frames) {
			end = frames[i+1].hdr
		}
		st.iov = append(st.iov, st.hdrs[f.hdr:end], buf[f.from:f.to])
	}
	if len(st.iov) > 0 {
		c.Writev(st.iov)
	}
	c.Discard(off)
	return action
}

// parseHeader decodes a client frame header (RFC 6455 §5.2) from b into
// gobwas's ws.Header without allocating; ok is false until b holds all of it.
func parseHeader(b []byte) (h ws.Header, size int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	size = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length, size = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		h.Length, size = int64(binary.BigEndian.Uint64(b[2:])&(1<<63-1)), 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < size+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[size:])
		size += 4
	}
	return h, size, true
}

// appendHeader appends the unmasked server header for h.
func appendHeader(b []byte, h ws.Header) []byte {
	b0 := byte(h.OpCode)
	if h.Fin {
		b0 |= 0x80
	}
	switch n := h.Length; {
	case n < 126:
		return append(b, b0, byte(n))
	case n <= 0xffff:
		return append(b, b0, 126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

func main() {
	addr := flag.String("addr", ":9001", "listen address")
	flag.Parse()
	err := gnet.Run(&server{}, "tcp://"+*addr,
		gnet.WithMulticore(true),
		gnet.WithReusePort(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReadBufferCap(64<<10),
		gnet.WithWriteBufferCap(64<<10))
	log.Fatal(err)
}
