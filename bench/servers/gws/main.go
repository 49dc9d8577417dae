// Command gws is the benchmark's echo server on github.com/lxzan/gws, written
// as gws's README "Best Practice" shows, minus what costs speed in an echo
// benchmark: ParallelEnabled off (messages handled in order on the read
// goroutine), no compression, no deadlines.
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
	flag.Parse()
	s := gws.NewServer(handler{}, &gws.ServerOption{
		ParallelEnabled:     false,
		ReadMaxPayloadSize:  64 << 20,
		WriteMaxPayloadSize: 64 << 20,
	})
	log.Fatal(s.Run(*addr))
}
