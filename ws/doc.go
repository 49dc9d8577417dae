// Package ws is an RFC 6455 WebSocket server on the reactor's pinned event
// loops.
//
// A message's way through: the loop reads into its read buffer; the
// incremental parser (ParseHeader) checks each frame header before the
// payload is looked at, unmasks the payload in place (Unmask) and validates
// text as it arrives (ValidateUTF8, which fails fast inside fragments); the
// Handler gets the payload as a view of that same buffer; WriteMessage queues
// the reply header and the same payload bytes, and the loop sends every reply
// of the turn with one writev. Only a frame split across reads, a fragmented
// message, or a tail the socket would not take is copied, and those copies are
// counted in Stats.
//
// A minimal echo server:
//
//	cfg := ws.DefaultConfig()
//	srv, err := ws.NewServer(cfg)
//	if err != nil {
//		log.Fatal(err)
//	}
//	go srv.Run(ws.HandlerFunc(func(e *ws.Event) error {
//		if e.Kind == ws.MessageEvent {
//			return e.Conn.WriteMessage(e.Op, e.Data)
//		}
//		return nil
//	}))
//	// ... later
//	srv.Shutdown()
//
// Protocol failures close the connection with the code RFC 6455 names:
// 1002 for framing errors, 1007 for invalid UTF-8, 1009 for frames or
// messages over the limits, 1008 for a client that stops reading, 1011 when
// the handler fails; bad upgrade requests get an HTTP 400, 405, 426 (with
// Sec-WebSocket-Version: 13), 431 or 505.
package ws
