// Package reactor runs one event loop per pinned CPU and moves bytes between
// sockets and an upper-layer Handler without copying them on the fast path.
// It knows no protocol: the Handler (package ws) gives meaning to the bytes.
//
// Each Loop is a goroutine locked to its OS thread, named reactor-N and
// pinned to one CPU. It owns a poller (epoll on Linux, an I/O completion
// port on Windows), its own listening socket (SO_REUSEPORT on Linux; on
// Windows loop 0 accepts and hands sockets to the loops), a read buffer from
// its node's pool, a gather list and a header scratch arena. A loop turn is:
//
//	poll (up to Config.Batch events)
//	  accept   -> admission caps (peer.go) -> Handler.OnOpen
//	  read     -> Handler.OnRead(view of the loop's read buffer)
//	                 the handler queues replies with Conn.Write (slices that
//	                 point into that same buffer)
//	  flush    -> one gather write per connection; only a tail the kernel
//	              did not take is copied to the connection's write queue
//	  inbox    -> tasks posted by other goroutines (Loop.Post)
//
// The files show the split: loop.go states the platform contract (the hooks
// each platform defines) and holds the portable loop, conn.go the portable
// connection and its write path (write queue, stalled writers, eviction),
// read.go the read path, buf.go the slow-path buffer, memory.go where its
// memory comes from and who pays (pools, heap, regions; the budget and who
// gets refused), peer.go the client addresses and admission at accept,
// stats.go the counters; poll_*.go, accept_*.go and conn_*.go are the Linux
// and Windows sides of the contract, and poll_other.go makes New fail with
// ErrUnsupported elsewhere (and on Linux built with -tags noreactor, so
// that make test runs that path).
//
// A hostile peer cannot hold a loop: one read per ready connection per turn
// (a large message is read a read buffer's worth at a time), at most
// writeSlice bytes of a write queue per writability event, no copy of a
// queue to make room; and it cannot hold memory it did not pay for in bytes
// sent (memory.go).
//
// Every Handler method and every Conn method runs on the connection's loop
// thread; Loop.Post, Loop.SetBatch and the Stats methods may be called from
// any goroutine.
package reactor
