package ws

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"testing"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// deflateOffers are the ways a compressed echo leaves the server: as it
// arrived (the client's message is a valid reply), compressed again with
// the connection's history, compressed again from scratch; and inflated
// with the client's history (client context takeover, which the server
// allows only when configured to).
var deflateOffers = []struct {
	name, offer   string
	clientContext bool
}{
	{"passthrough", "permessage-deflate", false},
	{"recompressed with history", "permessage-deflate; server_max_window_bits=10", false},
	{"recompressed without history", "permessage-deflate; server_no_context_takeover; server_max_window_bits=10", false},
	{"client context takeover", "permessage-deflate; client_max_window_bits", true},
}

// TestDeflateEchoAllocsPerMessage: a compressed echo allocates nothing in
// the steady state, whichever way it goes.
func TestDeflateEchoAllocsPerMessage(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	for _, o := range deflateOffers {
		t.Run(o.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Workers = 1
			cfg.Compression.Enabled = true
			cfg.Compression.ClientContextTakeover = o.clientContext
			srv := startServer(t, cfg, echoHandler)
			allocs := deflateEchoAllocs(t, srv.Addr().String(), o.offer, 16, 1024, 500)
			t.Logf("heap allocations per compressed echo (%s): %.4f", o.name, allocs)
			require.Less(t, allocs, 0.01)
		})
	}
}

// deflateEchoAllocs pipelines batches of inFlight compressed text messages
// of size bytes on one connection with offer, rounds times, and returns
// mallocs per message. The client compresses every message before it
// measures (with its history if it keeps one), reads the echoes without
// allocating, and checks the first ones, inflated.
func deflateEchoAllocs(t testing.TB, addr, offer string, inFlight, size, rounds int) float64 {
	c := wstest.DialRaw(t, addr)
	defer c.Close()
	require.NoError(t, c.HandshakeOffer(addr, offer))
	require.NotNil(t, c.Deflate)
	const warm = 100
	batches := make([][]byte, warm+rounds)
	for i := range batches {
		for j := range inFlight {
			msg := jsonText(size + (i*inFlight+j)%7) // varied, so that the history is used as in life
			batches[i] = append(batches[i], wstest.Compressed(gws.OpText, c.Deflate.Compress(msg), 0)...)
			if i == 0 && j == 0 {
				c.Write(t, batches[0])
				c.ExpectCompressed(t, gws.OpText, msg)
				batches[0] = batches[0][:0]
			}
		}
	}
	buf := make([]byte, 2*size)
	round := func(i int) {
		if _, err := c.Conn().Write(batches[i]); err != nil {
			t.Fatal(err)
		}
		n := inFlight
		if i == 0 {
			n-- // the first batch lost its first message to the check
		}
		for range n {
			if err := skipFrame(c.Reader(), buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range warm {
		round(i) // warm up: buffers, writers, scheduler
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := warm; i < len(batches); i++ {
		round(i)
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(rounds*inFlight)
}

// skipFrame reads one unmasked server frame into buf, allocating nothing
// (its header too goes through buf: a local array would escape).
func skipFrame(r io.Reader, buf []byte) error {
	h := buf[:10]
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint64(h[2:10]))
	}
	if n > len(buf) {
		return fmt.Errorf("frame of %d bytes", n)
	}
	_, err := io.ReadFull(r, buf[:n])
	return err
}

// jsonText is n bytes of JSON-like text (a feed of quotes).
func jsonText(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, `{"sym":"S%03d","px":%d.%02d,"qty":%d}`, i*37%400, 100+i*13%900, i*7%100, i*101%10000)
	}
	return b[:n]
}

// BenchmarkDeflateEchoLoopback is BenchmarkEchoLoopback for compressed
// JSON-like text, each way an echo can leave.
func BenchmarkDeflateEchoLoopback(b *testing.B) {
	for _, size := range []int{1024, 16 << 10} {
		for _, o := range deflateOffers {
			b.Run(wstest.SizeName(size)+"/"+o.name, func(b *testing.B) {
				if o.clientContext {
					b.Skip("the client's messages depend on its history: see TestDeflateEchoAllocsPerMessage")
				}
				cfg := DefaultConfig()
				cfg.Workers = 1
				cfg.Compression.Enabled = true
				srv := startServer(b, cfg, echoHandler)
				addr := srv.Addr().String()
				c := wstest.DialRaw(b, addr)
				defer c.Close()
				require.NoError(b, c.HandshakeOffer(addr, o.offer))
				const inFlight = 16
				frame := wstest.Compressed(gws.OpText, c.Deflate.Compress(jsonText(size)), 0)
				batch := bytes.Repeat(frame, inFlight)
				buf := make([]byte, 2*size)
				b.SetBytes(int64(size * inFlight))
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				for b.Loop() {
					c.Conn().Write(batch)
					for range inFlight {
						if err := skipFrame(c.Reader(), buf); err != nil {
							b.Fatal(err)
						}
					}
				}
				runtime.ReadMemStats(&m1)
				b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N*inFlight), "allocs/msg")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*inFlight), "ns/msg")
			})
		}
	}
}
