package ws_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// TestServerRegressions holds the cases of four server bugs this suite
// found (docs/CONFORMANCE.md, "Server bugs found"), fixed since: each guards
// against its bug coming back.
func TestServerRegressions(t *testing.T) {
	t.Run("BUG-1 pongs count against MaxWriteQueue", func(t *testing.T) {
		addr := startEcho(t, func(c *ws.Config) {
			c.MaxWriteQueue = 64 << 10
			// The client writes megabytes before it reads; on a slow (emulated)
			// machine that outlasts the default linger after the 1008.
			c.LingerTimeout = 30 * time.Second
		})
		c := wstest.Dial(t, addr)
		require.NoError(t, c.Conn().(*net.TCPConn).SetReadBuffer(16<<10))
		p := bytes.Repeat([]byte{'p'}, 125)
		var batch []byte
		for range 1000 {
			batch = append(batch, wstest.Ping(p)...)
		}
		const batches = 200 // 26 MB of pings; the client reads nothing meanwhile
		for range batches {
			c.Write(t, batch)
		}
		c.Write(t, wstest.Close(1000, ""))
		pongs := 0
		for {
			f := c.Next(t)
			if f.Op != gws.OpPong {
				require.Equal(t, gws.OpClose, f.Op, "%v", f)
				require.GreaterOrEqual(t, len(f.Payload), 2)
				require.Equal(t, 1008, int(binary.BigEndian.Uint16(f.Payload)),
					"after %d of %d pongs (%d bytes queued for a client that reads nothing, limit %d), the server closed with %v",
					pongs, batches*1000, pongs*127, 64<<10, f)
				break
			}
			pongs++
		}
	})

	t.Run("BUG-2 a reading client may pipeline past MaxWriteQueue", func(t *testing.T) {
		// 100 KiB of 1 KiB messages in one read: their echoes count against
		// MaxWriteQueue before writev has even offered them to the kernel.
		addr := startEcho(t, func(c *ws.Config) { c.MaxWriteQueue = 16 << 10 })
		var b []byte
		var want []step
		p := wstest.Payload(1024, 5)
		for range 100 {
			b = append(b, wstest.Binary(p)...)
			want = append(want, expectBinary(p))
		}
		c := wstest.Dial(t, addr)
		for _, s := range steps(send(b), want, closeNormally()) {
			s(t, c)
		}
	})

	t.Run("BUG-3 Conn.Close never puts reserved codes on the wire", func(t *testing.T) {
		addr := startServer(t, nil, ws.HandlerFunc(appHandler))
		runCases(t, addr, dial, appBugCases())
	})

	t.Run("BUG-4 a Sec-WebSocket-Key that is not base64 of 16 bytes gets 400", func(t *testing.T) {
		addr := startEcho(t, nil)
		for _, key := range []string{"!!!!!!!!!!!!!!!!!!!!!!!!", "AAAAAAAAAAAAAAAAAAAAAAAA"} {
			t.Run(key, func(t *testing.T) {
				t.Parallel()
				c := wstest.DialRaw(t, addr)
				rawSend(wstest.Request(addr, key))(t, c)
				expectHTTP(400)(t, c)
			})
		}
	})
}
