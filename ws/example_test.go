package ws_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gws "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/hioload-ws/hioload-ws/ws"
)

// Example is the echo server of the echo command in a few lines: a config,
// middleware, a handler that replies from the bytes it was given, and a
// graceful shutdown.
func Example() {
	cfg := ws.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Workers = 1
	srv, err := ws.NewServer(cfg, ws.WithMiddleware(ws.Recovery(slog.Default())))
	if err != nil {
		fmt.Println(err)
		return
	}
	closed := make(chan ws.StatusCode, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(ws.HandlerFunc(func(e *ws.Event) error {
			switch e.Kind {
			case ws.MessageEvent:
				return e.Conn.WriteMessage(e.Op, e.Data) // zero-copy reply
			case ws.CloseEvent:
				closed <- e.Code
			}
			return nil
		}))
	}()

	// A client: gobwas/ws's dialer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, _, err := gws.Dial(ctx, "ws://"+srv.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	wsutil.WriteClientText(conn, []byte("hello"))
	reply, _ := wsutil.ReadServerText(conn)
	fmt.Println(string(reply))
	wsutil.WriteClientMessage(conn, gws.OpClose, gws.NewCloseFrameBody(gws.StatusNormalClosure, ""))
	wsutil.ReadServerData(conn) // the server's close reply
	conn.Close()

	fmt.Println("closed with", <-closed)
	srv.Shutdown()
	fmt.Println(<-done)
	// Output:
	// hello
	// closed with 1000
	// <nil>
}
