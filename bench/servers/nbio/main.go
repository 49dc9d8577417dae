// Command nbio is the benchmark's echo server on github.com/lesismal/nbio, set
// up as nbio's README quick start does for a high-load server: the nbhttp
// engine (non-blocking, epoll) with MaxLoad raised, ReleaseWebsocketPayload on
// so payload buffers go back to nbio's pool after OnMessage, and the websocket
// upgrader echoing from OnMessage. Read limits are raised to pass 1 MiB
// messages. -compression turns on permessage-deflate (EnableCompression; nbio
// supports it only without context takeover, both ways).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func main() {
	addr := flag.String("addr", ":9001", "listen address")
	compression := flag.Bool("compression", false, "accept permessage-deflate (no context takeover) and compress replies")
	flag.Parse()
	u := websocket.NewUpgrader()
	u.EnableCompression(*compression)
	u.CheckOrigin = func(*http.Request) bool { return true }
	u.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		_ = c.WriteMessage(mt, data)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := u.Upgrade(w, r, nil); err != nil {
			return
		}
	})
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                      "tcp",
		Addrs:                        []string{*addr},
		MaxLoad:                      1_000_000,
		ReleaseWebsocketPayload:      true,
		ReadLimit:                    64 << 20,
		MaxWebsocketFramePayloadSize: 64 << 20,
		Handler:                      mux,
	})
	if err := engine.Start(); err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	engine.Stop()
}
