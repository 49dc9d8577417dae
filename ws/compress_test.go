package ws_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gws "github.com/gobwas/ws"
	kflate "github.com/klauspost/compress/flate"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// permessage-deflate (RFC 7692) against the real server: negotiation over
// HTTP, the reserved bit, echo semantics, context takeover on both sides,
// decompression bombs. The conformance suite (sections 12 and 13) and the
// interop tests are in conformance_deflate_test.go and interop_test.go.

// compressed turns compression on, with mod's changes.
func compressed(mod func(*ws.Compression)) func(*ws.Config) {
	return func(c *ws.Config) {
		c.Compression.Enabled = true
		if mod != nil {
			mod(&c.Compression)
		}
	}
}

// dialDeflate connects with offer and requires the server to accept it.
func dialDeflate(t testing.TB, addr, offer string) *wstest.Client {
	t.Helper()
	c := wstest.DialRaw(t, addr)
	require.NoError(t, c.HandshakeOffer(addr, offer))
	require.NotNil(t, c.Deflate, "the server declined %q", offer)
	return c
}

// extensionResponse runs a handshake with the given Sec-WebSocket-Extensions
// header lines and returns the response's Sec-WebSocket-Extensions lines.
func extensionResponse(t *testing.T, addr string, offers ...string) []string {
	t.Helper()
	c := wstest.DialRaw(t, addr)
	req := wstest.Request(addr, wstest.NewKey())
	req = req[:len(req)-2]
	for _, o := range offers {
		req += "Sec-WebSocket-Extensions: " + o + "\r\n"
	}
	c.Write(t, []byte(req+"\r\n"))
	resp := c.ExpectResponse(t, http.StatusSwitchingProtocols)
	return resp.Header.Values("Sec-WebSocket-Extensions")
}

// TestDeflateNegotiation checks what the server answers over HTTP, byte for
// byte (the negotiation table itself is in package deflate).
func TestDeflateNegotiation(t *testing.T) {
	t.Parallel()
	off := startEcho(t, nil)
	on := startEcho(t, compressed(nil))
	small := startEcho(t, compressed(func(z *ws.Compression) {
		z.ServerContextTakeover, z.ServerWindowBits = false, 11
		z.ClientContextTakeover, z.ClientWindowBits = true, 12
	}))
	const pmd = "permessage-deflate"
	for _, tc := range []struct {
		name   string
		addr   string
		offers []string
		want   []string
	}{
		{"compression off", off, []string{pmd}, nil},
		{"no offer", on, nil, nil},
		{"another extension only", on, []string{"x-webkit-deflate-frame"}, nil},
		{"browser offer", on, []string{pmd + "; client_max_window_bits"}, []string{pmd + "; client_no_context_takeover"}},
		{"server_max_window_bits=9", on, []string{pmd + "; server_max_window_bits=9"}, []string{pmd + "; client_no_context_takeover; server_max_window_bits=9"}},
		{"bad offer declined, next one taken", on, []string{pmd + "; server_max_window_bits=16, " + pmd + "; server_no_context_takeover"},
			[]string{pmd + "; server_no_context_takeover; client_no_context_takeover"}},
		{"offers over two lines", on, []string{"x-foo", pmd}, []string{pmd + "; client_no_context_takeover"}},
		{"only bad offers", on, []string{pmd + "; foo, " + pmd + "; client_max_window_bits; client_max_window_bits"}, nil},
		{"server policy", small, []string{pmd + "; client_max_window_bits"},
			[]string{pmd + "; server_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12"}},
		{"server policy, client without client_max_window_bits", small, []string{pmd},
			[]string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, extensionResponse(t, tc.addr, tc.offers...))
		})
	}
}

// TestDeflateReservedBit: RSV1 without the extension, or where RFC 7692
// §6.1 never allows it, is a protocol error (1002).
func TestDeflateReservedBit(t *testing.T) {
	t.Parallel()
	on := startEcho(t, compressed(nil))
	hello := []byte("Hello")
	rsv1 := func(op gws.OpCode, fin bool, p []byte) []byte {
		return wstest.Frame{Fin: fin, Rsv: 4, Op: op, Payload: p}.Bytes()
	}
	t.Run("not offered", func(t *testing.T) {
		c := wstest.Dial(t, on)
		c.Write(t, rsv1(gws.OpText, true, hello))
		c.ExpectClose(t, 1002, false)
	})
	for _, tc := range []struct {
		name   string
		frames [][]byte
		echo   []byte
	}{
		{"ping", [][]byte{rsv1(gws.OpPing, true, hello)}, nil},
		{"pong", [][]byte{rsv1(gws.OpPong, true, nil)}, nil},
		{"close", [][]byte{rsv1(gws.OpClose, true, []byte{3, 0xe8})}, nil},
		{"continuation", [][]byte{wstest.Data(gws.OpText, false, hello), rsv1(gws.OpContinuation, true, hello)}, nil},
		{"continuation of a compressed message", nil, nil}, // filled below
		{"RSV2", [][]byte{wstest.Frame{Fin: true, Rsv: 2, Op: gws.OpText, Payload: hello}.Bytes()}, nil},
		{"after a good message", [][]byte{wstest.Text(hello), rsv1(gws.OpPing, true, nil)}, hello},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialDeflate(t, on, "permessage-deflate")
			frames := tc.frames
			if frames == nil {
				data := c.Deflate.Compress(bytes.Repeat(hello, 10))
				frames = [][]byte{rsv1(gws.OpText, false, data[:5]), rsv1(gws.OpContinuation, true, data[5:])}
			}
			c.Write(t, bytes.Join(frames, nil))
			if tc.echo != nil {
				c.ExpectMessage(t, gws.OpText, tc.echo)
			}
			c.ExpectClose(t, 1002, false)
		})
	}
	t.Run("invalid deflate data", func(t *testing.T) {
		c := dialDeflate(t, on, "permessage-deflate")
		c.Write(t, rsv1(gws.OpBinary, true, []byte{0x07, 1, 2, 3}))
		c.ExpectClose(t, 1002, false)
	})
	t.Run("invalid UTF-8 once inflated", func(t *testing.T) {
		c := dialDeflate(t, on, "permessage-deflate")
		c.Write(t, wstest.Compressed(gws.OpText, c.Deflate.Compress([]byte("ok \xff\xfe")), 0))
		c.ExpectClose(t, 1007, false)
	})
}

// TestDeflateEcho: a message that arrived compressed is echoed compressed,
// byte for byte the same once inflated, whole or fragmented, in one read or
// many; control frames are never compressed; uncompressed messages are
// compressed from MinSize on.
func TestDeflateEcho(t *testing.T) {
	t.Parallel()
	configs := map[string]func(*ws.Compression){
		"defaults":                   nil,
		"no server context takeover": func(z *ws.Compression) { z.ServerContextTakeover = false },
		"client context takeover":    func(z *ws.Compression) { z.ClientContextTakeover = true },
		"server window 9":            func(z *ws.Compression) { z.ServerWindowBits = 9 },
		"level 9, both contexts":     func(z *ws.Compression) { z.Level, z.ClientContextTakeover = 9, true },
	}
	for name, mod := range configs {
		for _, rbuf := range []int{4096, 128 << 10} {
			t.Run(fmt.Sprintf("%s rbuf=%d", name, rbuf), func(t *testing.T) {
				t.Parallel()
				addr := startEcho(t, func(c *ws.Config) {
					compressed(mod)(c)
					c.ReadBufferSize = rbuf
				})
				for _, offer := range []string{"permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover"} {
					c := dialDeflate(t, addr, offer)
					for i, n := range []int{0, 1, 63, 64, 125, 1000, 5000, 70000, 300000} {
						if n > 100000 && mod != nil {
							continue // the largest for the defaults only: -race is slow
						}
						text := wstest.TextPayload(n)
						bin := wstest.Payload(n, uint64(i))
						c.Write(t, wstest.Compressed(gws.OpText, c.Deflate.Compress(text), 0))
						c.ExpectCompressed(t, gws.OpText, text)
						c.Write(t, wstest.Compressed(gws.OpBinary, c.Deflate.Compress(bin), 1000))
						c.ExpectCompressed(t, gws.OpBinary, bin)
						// In fragments split across reads, with a ping after the
						// first fragment.
						data := c.Deflate.Compress(text)
						ping := wstest.Ping([]byte("p"))
						if len(data) > 300 {
							first := wstest.Frame{Rsv: 4, Op: gws.OpText, Payload: data[:300]}.Bytes()
							rest := wstest.Fragments(gws.OpContinuation, data[300:], 300)
							c.WriteChopped(t, bytes.Join([][]byte{first, ping, rest}, nil), 4000, 0)
							c.ExpectMessage(t, gws.OpPong, []byte("p"))
							c.ExpectCompressed(t, gws.OpText, text)
						} else {
							c.WriteChopped(t, append(wstest.Compressed(gws.OpText, data, 0), ping...), 3, 0)
							c.ExpectCompressed(t, gws.OpText, text)
							c.ExpectMessage(t, gws.OpPong, []byte("p"))
						}
						// Uncompressed: compressed back from MinSize (64) on.
						c.Write(t, wstest.Text(text))
						if n < 64 {
							f := c.Next(t)
							require.Zero(t, f.Rsv, "a %d-byte reply went out compressed", n)
							require.Equal(t, text, f.Payload)
						} else {
							c.ExpectMessage(t, gws.OpText, text)
						}
					}
					c.Write(t, wstest.Close(1000, ""))
					c.ExpectClose(t, 1000, true)
				}
			})
		}
	}
}

// TestDeflateReplies: replies that are not echoes are compressed when that
// makes them smaller, and sent uncompressed otherwise; Send from another
// goroutine compresses too.
func TestDeflateReplies(t *testing.T) {
	t.Parallel()
	json := bytes.Repeat([]byte(`{"sym":"ABC","px":101.25,"qty":300}`), 40)
	noise := wstest.Payload(2000, 5)
	var wg sync.WaitGroup
	addr := startServer(t, compressed(nil), ws.HandlerFunc(func(e *ws.Event) error {
		if e.Kind != ws.MessageEvent {
			return nil
		}
		switch string(e.Data) {
		case "json":
			return e.Conn.WriteMessage(ws.OpText, json)
		case "noise":
			return e.Conn.WriteMessage(ws.OpBinary, noise)
		case "send":
			conn := e.Conn
			wg.Add(1)
			go func() { defer wg.Done(); conn.Send(ws.OpText, json) }()
		}
		return nil
	}))
	t.Cleanup(wg.Wait)
	c := dialDeflate(t, addr, "permessage-deflate")
	for range 3 { // with the history of the ones before
		c.Write(t, wstest.Text([]byte("json")))
		c.ExpectCompressed(t, gws.OpText, json)
		c.Write(t, wstest.Text([]byte("noise")))
		f := c.Next(t)
		require.Zero(t, f.Rsv, "incompressible data went out compressed")
		require.Equal(t, noise, f.Payload)
		c.Write(t, wstest.Compressed(gws.OpText, c.Deflate.Compress([]byte("send")), 0))
		c.ExpectCompressed(t, gws.OpText, json)
	}
}

// TestDeflateContextTakeover runs more connections than the loop has
// history slots, both sides keeping context, with messages that refer to
// earlier ones; the client compresses with the window the server asked
// for (klauspost's writer can limit it; the standard library's cannot).
func TestDeflateContextTakeover(t *testing.T) {
	t.Parallel()
	for _, bits := range []int{15, 10} {
		t.Run(fmt.Sprintf("client window %d", bits), func(t *testing.T) {
			t.Parallel()
			addr := startEcho(t, compressed(func(z *ws.Compression) {
				z.ClientContextTakeover, z.ClientWindowBits, z.HistorySlots = true, bits, 2
			}))
			var conns []*wstest.Client
			for range 5 {
				c := dialDeflate(t, addr, "permessage-deflate; client_max_window_bits")
				require.False(t, c.Deflate.ClientNoContextTakeover)
				require.False(t, c.Deflate.ServerNoContextTakeover)
				if bits < 15 {
					require.Equal(t, bits, c.Deflate.ClientMaxWindowBits)
					c.Deflate.NewCompressor = func(w io.Writer) wstest.Compressor {
						fw, err := kflate.NewWriterWindow(w, 1<<bits)
						require.NoError(t, err)
						return fw
					}
				}
				conns = append(conns, c)
			}
			// 600 bytes that do not repeat inside themselves (and fit a 1 KiB
			// window): only the history makes the next message small.
			base := []byte(fmt.Sprintf(`{"id":"%x"}`, wstest.Payload(294, 1)))
			first := make([]int, len(conns)) // each connection's first message, compressed alone
			for i := range 60 {
				c := conns[i%len(conns)]
				msg := append(bytes.Clone(base), fmt.Sprint(i)...)
				data := c.Deflate.Compress(msg)
				if i < len(conns) {
					first[i] = len(data)
				} else {
					require.Less(t, len(data), first[i%len(conns)], "message %d did not refer to the one before", i)
				}
				c.Write(t, wstest.Compressed(gws.OpText, data, 0))
				c.ExpectCompressed(t, gws.OpText, msg)
			}
		})
	}
}

// TestDeflateBomb: a message that inflates past MaxMessageSize is refused
// with 1009 however small it is compressed; one that inflates to exactly
// the limit is delivered, holding no more memory than the limit (a large
// inflate buffer is a region: address space reserved, paid for as written).
func TestDeflateBomb(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	var peak int64 // buffer memory held beyond the pools when a message is delivered
	var mu sync.Mutex
	var srv atomic.Pointer[ws.Server]
	s := startServerRunning(t, func(c *ws.Config) {
		compressed(nil)(c)
		c.MaxFrameSize, c.MaxMessageSize = limit, limit
		c.Workers = 1
	}, ws.HandlerFunc(func(e *ws.Event) error {
		if e.Kind == ws.MessageEvent {
			mu.Lock()
			peak = max(peak, srv.Load().Stats().HeapBytes)
			mu.Unlock()
			return e.Conn.WriteMessage(e.Op, e.Data)
		}
		return nil
	}))
	srv.Store(s)
	addr := s.Addr().String()
	// The client's messages are compressed on their own (the server answers
	// client_no_context_takeover), so one client compresses them all.
	client := &wstest.Deflate{ClientNoContextTakeover: true}
	zeros := client.Compress(make([]byte, 16<<20))
	for _, tc := range []struct {
		name string
		data []byte
		n    int
		frag int
		ok   bool
	}{
		{"exactly the limit", client.Compress(make([]byte, limit)), limit, 0, true},
		{"exactly the limit, incompressible", client.Compress(wstest.Payload(limit, 1)), limit, 0, true},
		{"one byte over", client.Compress(make([]byte, limit+1)), limit + 1, 0, false},
		{"16 MiB of zeros", zeros, 16 << 20, 0, false},
		{"16 MiB of zeros in fragments of 100", zeros, 16 << 20, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialDeflate(t, addr, "permessage-deflate")
			require.True(t, c.Deflate.ClientNoContextTakeover)
			mu.Lock()
			peak = 0
			mu.Unlock()
			c.Write(t, wstest.Compressed(gws.OpBinary, tc.data, tc.frag))
			if !tc.ok {
				require.Less(t, len(tc.data), limit/8, "refused for what it inflates to, not for its size")
				c.ExpectClose(t, 1009, false)
				return
			}
			want := make([]byte, tc.n)
			if len(tc.data) > limit {
				want = wstest.Payload(limit, 1) // deflate made it larger than the limit: still accepted
			}
			c.ExpectCompressed(t, gws.OpBinary, want)
			mu.Lock()
			defer mu.Unlock()
			// The compressed message (its reassembly buffer) and the
			// inflated one, with the smaller buffers the inflated one grew
			// through (kept for reuse) and page rounding.
			t.Logf("%d compressed bytes inflated to %d: %d bytes of buffer memory beyond the pools", len(tc.data), tc.n, peak)
			require.Positive(t, peak, "the inflated message is not paid for")
			require.LessOrEqual(t, peak, int64(len(tc.data)+limit+256<<10), "inflating held more than the limit")
		})
	}
}

// TestDeflateStats: the counters see compressed traffic both ways.
func TestDeflateStats(t *testing.T) {
	t.Parallel()
	cfg := ws.DefaultConfig()
	cfg.ListenAddr, cfg.Workers = "127.0.0.1:0", 1
	cfg.Compression.Enabled = true
	srv, err := ws.NewServer(cfg)
	require.NoError(t, err)
	go srv.Run(ws.HandlerFunc(func(e *ws.Event) error {
		if e.Kind == ws.MessageEvent {
			return e.Conn.WriteMessage(e.Op, e.Data)
		}
		return nil
	}))
	t.Cleanup(func() { srv.Shutdown() })
	addr := srv.Addr().String()
	c := dialDeflate(t, addr, "permessage-deflate")
	msg := []byte(strings.Repeat("compress me ", 100))
	data := c.Deflate.Compress(msg)
	c.Write(t, wstest.Compressed(gws.OpText, data, 0))
	c.ExpectCompressed(t, gws.OpText, msg)
	c.Write(t, wstest.Text(msg))
	c.ExpectCompressed(t, gws.OpText, msg)
	c.Write(t, wstest.Close(1000, ""))
	c.ExpectClose(t, 1000, true)
	st := srv.Stats()
	require.EqualValues(t, 1, st.DeflateIn)
	require.EqualValues(t, 2, st.DeflateOut)
	require.EqualValues(t, 1, st.DeflatePassthrough, "the echo of the compressed message left as it arrived")
	require.EqualValues(t, len(data), st.DeflateWireIn)
	require.Less(t, st.DeflateWireOut, uint64(len(msg)))
	require.EqualValues(t, 2*len(msg), st.BytesIn)
}
