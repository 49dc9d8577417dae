// Command gws is the benchmark's echo server on github.com/lxzan/gws, written
// as gws's README "Best Practice" shows, minus what costs speed in an echo
// benchmark: ParallelEnabled off (messages handled in order on the read
// goroutine), no deadlines. -compression turns on permessage-deflate (gws's
// defaults: no context takeover, level 1, a pool of compressors);
// -context-takeover lets both sides keep context (gws then keeps a sliding
// window per direction on each connection).
package main

import (
	"flag"
	"log"

	"github.com/lxzan/gws"
)

type handler struct{ gws.BuiltinEventHandler }

func (handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (handler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	addr := flag.String("addr", ":9001", "listen address")
	compression := flag.Bool("compression", false, "accept permessage-deflate and compress replies")
	takeover := flag.Bool("context-takeover", false, "with -compression: context takeover both ways")
	flag.Parse()
	s := gws.NewServer(handler{}, &gws.ServerOption{
		ParallelEnabled:     false,
		ReadMaxPayloadSize:  64 << 20,
		WriteMaxPayloadSize: 64 << 20,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               *compression,
			ServerContextTakeover: *takeover,
			ClientContextTakeover: *takeover,
		},
	})
	log.Fatal(s.Run(*addr))
}
