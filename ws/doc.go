// Package ws is an RFC 6455 WebSocket server on the reactor's pinned event
// loops: the API a program uses to serve WebSocket clients.
//
// A message's way through: the loop reads into pool memory (its read
// buffer with epoll; with io_uring the kernel receives into the loop's
// provided buffers itself); the frame parser checks each header before the
// payload is looked at, unmasks the payload in place and validates text as
// it arrives (failing fast, inside fragments too); the Handler gets the
// payload as a view of that same memory (Event.Data); Conn.WriteMessage
// queues the reply header and the same payload bytes, and the loop sends
// every reply of the turn with one gather write per connection. Only a
// frame split across reads, a fragmented message, or a tail the socket
// would not take is copied, and every copy is counted in Stats. A large
// message is read straight into a buffer sized once from its header and
// paid for as its bytes arrive; its echo's unsent rest is queued from that
// buffer.
//
// permessage-deflate (RFC 7692) is off unless Config.Compression.Enabled.
// Negotiated, a compressed message is read the same way, then inflated as
// a whole into a pool buffer (bounded by MaxMessageSize while it inflates)
// by the loop's inflater, and the handler gets that buffer; a reply is
// compressed by the loop's compressors, except the echo of a compressed
// message that is already a valid reply, which leaves from the bytes it
// arrived in. No compressor or inflater belongs to a connection (see
// Compression for what each choice costs per connection).
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
// Sec-WebSocket-Version: 13), 431 or 505. errors.As with *CloseError finds
// the code of any error the server closes a connection for.
//
// The files: server.go (Server, Run, Shutdown), config.go (Config, Limits),
// conn.go (Conn), event.go (Event, Handler, Buffer), middleware.go,
// logsink.go (LogSink: logging that never blocks a loop),
// control.go (probes, stats, reload), stats.go (the counters, defined once),
// handshake.go, read.go and write.go (the protocol on a connection),
// compress.go (permessage-deflate on a connection), engine.go (the
// reactor's callbacks), admission.go (connection caps, checked at accept,
// and origins), placement.go (where loops run, their memory), reclaim.go
// (free heap memory handed back after a burst). The wire codec is in
// ws/internal/wire, permessage-deflate's negotiation and codecs in
// ws/internal/deflate; Prometheus metrics and pprof are in ws/wsmetrics, so
// that importing ws brings no metrics stack.
package ws
