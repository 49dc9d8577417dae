// Command gorilla is the benchmark's echo server on github.com/gorilla/websocket:
// net/http, one goroutine per connection, and the streaming NextReader /
// NextWriter echo that gorilla's own autobahn server uses (no per-message
// allocation of the whole payload). -compression turns on permessage-deflate
// as gorilla's README says (EnableCompression; gorilla supports it only
// without context takeover, both ways).
package main

import (
	"flag"
	"io"
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadLimit(64 << 20)
	for {
		op, rd, err := c.NextReader()
		if err != nil {
			return
		}
		wr, err := c.NextWriter(op)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", ":9001", "listen address")
	compression := flag.Bool("compression", false, "accept permessage-deflate (no context takeover) and compress replies")
	flag.Parse()
	upgrader.EnableCompression = *compression
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(echo)))
}
