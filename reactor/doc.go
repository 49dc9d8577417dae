// Package reactor runs one event loop per pinned CPU and moves bytes between
// sockets and an upper-layer Handler without copying them on the fast path.
//
// Each Loop is a goroutine locked to its OS thread and pinned to one CPU. It
// owns an epoll instance (IOCP on Windows, in a later change), its own
// SO_REUSEPORT listening socket, a read buffer, an iovec array and a header
// scratch arena. A loop turn is:
//
//	epoll_wait (up to Config.Batch events)
//	  accept   -> Handler.OnOpen
//	  read     -> Handler.OnRead(view of the loop's read buffer)
//	                 the handler queues replies with Conn.Write (iovecs that
//	                 point into that same buffer)
//	  flush    -> one writev per connection; only a tail the kernel did not
//	              take is copied to the connection's bounded write queue
//	  inbox    -> tasks posted by other goroutines (Loop.Post)
//
// Platform files define these hooks (loop_linux.go; the !linux file makes
// New fail with ErrUnsupported):
//
//	newLoop(e *Engine, idx int, spec LoopSpec) (*Loop, error)  create poller, wakeup, listener
//	(*Loop).run()                       the loop body; returns when the loop is done
//	(*Loop).wake() error                make a blocked run() look at its inbox
//	(*Conn).flush()                     write queued iovecs, queue the unsent tail
//	(*Conn).closeNow(err error)         unregister, close the fd, call OnClose
//	(*Conn).shutdownWrite()             half-close after the last queued byte
//	(*Conn).remoteAddr() net.Addr       the peer's address
package reactor
