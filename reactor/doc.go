// Package reactor runs one event loop per pinned CPU and moves bytes between
// sockets and an upper-layer Handler without copying them on the fast path.
//
// Each Loop is a goroutine locked to its OS thread and pinned to one CPU. It
// owns an epoll instance (a completion port on Windows), its own
// SO_REUSEPORT listening socket (on Windows loop 0 accepts and hands sockets
// to the loops), a read buffer from its node's pool, an iovec array and a
// header scratch arena. A loop turn is:
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
// Platform files define these hooks (loop_linux.go with epoll,
// loop_windows.go and conn_windows.go with IOCP; loop_other.go makes New
// fail with ErrUnsupported elsewhere):
//
//	newLoop(e *Engine, idx int, spec LoopSpec) (*Loop, error)  create poller, wakeup, listener
//	(*Loop).run()                       the loop body; returns when the loop is done
//	(*Loop).wake() error                make a blocked run() look at its inbox
//	(*Loop).release()                   close the loop's descriptors (loop not running)
//	(*Loop).read(c *Conn) bool          one read system call, then Loop.handleRead
//	(*Loop).beginShutdown()             stop accepting, then Loop.shutdownConn for each connection
//	(*Loop).closeAll(err error)         close every connection of the loop
//	(*loopPlat).setIov(b []byte)        add b to the loop's gather list
//	(*Conn).flush()                     write queued iovecs, queue the unsent tail
//	(*Conn).closeNow(err error)         unregister, close the fd, call OnClose
//	(*Conn).shutdownWrite()             half-close after the last queued byte
//	(*Conn).progressed() bool           did the peer take output since the last call
//	(*Conn).inFlight() int              output bytes handed to the kernel but not sent
//	(*Conn).remoteAddr() net.Addr       the peer's address
//	onMainThread() bool                 is the calling thread the process's main thread
//	FileLimit() int                     the open-descriptor limit
package reactor
