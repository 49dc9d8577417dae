package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/hugepage"
	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// Shutdown and messages the server starts itself (Conn.Send from other
// goroutines). The promise: every Send that returned nil before Shutdown
// reached the connection's loop is written before the loop's close 1001;
// from then on Send returns ErrConnClosed. Nothing Send accepted is lost,
// however many goroutines send while Shutdown runs.

// sendMsg is sender s's message seq to a client: the sender and the
// sequence number, then a pattern, size bytes in all.
func sendMsg(s, seq, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint32(p, uint32(s))
	binary.BigEndian.PutUint32(p[4:], uint32(seq))
	for i := 8; i < len(p); i++ {
		p[i] = byte(s*13 + seq + i)
	}
	return p
}

// TestShutdownDeliversAcceptedSends: 6 clients, 4 goroutines sending to
// each (messages of 8 B to 3 KiB) while Shutdown begins. Each client must
// get, from each sender, exactly the messages whose Send returned nil, in
// order and intact, and then close 1001; each sender's first error must be
// ErrConnClosed (or ErrBusy, retried).
func TestShutdownDeliversAcceptedSends(t *testing.T) {
	rounds := 2
	if testenv.WineVersion() != "" {
		rounds = 1 // wine's sockets are slow: one round is 10-15 s there
	}
	for round := range rounds {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) { shutdownWithSenders(t) })
	}
}

func shutdownWithSenders(t *testing.T) {
	const clients, senders, maxMsgs = 6, 4, 5000
	type open struct {
		c    *Conn
		addr string // the client's address, as the server sees it
	}
	opened := make(chan open, clients)
	cfg := DefaultConfig()
	cfg.Workers = 2
	cfg.ReactorRing = 256 // a small inbox: ErrBusy must not lose messages either
	// Graceful however slow the machine (wine): the test is about what is
	// delivered, not how fast.
	cfg.ShutdownTimeout = 4 * wstest.Timeout
	srv, done := runServer(t, cfg, HandlerFunc(func(e *Event) error {
		if e.Kind == OpenEvent {
			opened <- open{e.Conn, e.Conn.RemoteAddr().String()}
		}
		return nil
	}))
	cls := make([]*wstest.Client, clients)
	index := map[string]int{}
	for i := range cls {
		cls[i] = wstest.Dial(t, srv.Addr().String())
		index[cls[i].Conn().LocalAddr().String()] = i
	}
	conns := make([]*Conn, clients) // conns[i] is client i's connection
	for range conns {
		select {
		case o := <-opened:
			i, ok := index[o.addr]
			require.True(t, ok, "a connection from %s", o.addr)
			conns[i] = o.c
		case <-time.After(wstest.Timeout):
			t.Fatal("the clients did not all open")
		}
	}

	// Readers: per client, what each sender's messages were, up to the close.
	got := make([][senders]int, clients) // messages read per sender
	codes := make([]StatusCode, clients)
	readErrs := make([]error, clients)
	var readers sync.WaitGroup
	for i, c := range cls {
		readers.Add(1)
		go func() {
			defer readers.Done()
			readErrs[i] = readSends(c, &got[i], &codes[i])
		}()
	}

	// Senders: each tags its messages with its number, so that the reader
	// checks the order per sender.
	accepted := make([][senders]atomic.Int64, clients)
	var sendErrs [clients][senders]error
	var started sync.WaitGroup
	var sending sync.WaitGroup
	for i, c := range conns {
		for s := range senders {
			started.Add(1)
			sending.Add(1)
			go func() {
				defer sending.Done()
				n, going := 0, false
				for seq := 0; seq < maxMsgs; {
					if seq == 20 && !going {
						going = true
						started.Done()
					}
					err := c.Send(OpBinary, sendMsg(s, seq, 8+(seq*97)%3000))
					switch {
					case err == nil:
						seq++
						n++
						accepted[i][s].Store(int64(n))
						if going {
							// Keep sending while Shutdown runs, at a pace
							// that bounds what the clients must read.
							time.Sleep(100 * time.Microsecond)
						}
						continue
					case errors.Is(err, ErrBusy):
						time.Sleep(50 * time.Microsecond)
						continue
					}
					sendErrs[i][s] = err
					if !going {
						started.Done()
					}
					return
				}
				sendErrs[i][s] = errors.New("never refused: the loops did not shut down")
			}()
		}
	}
	started.Wait() // every sender has had 20 messages accepted
	require.NoError(t, srv.Shutdown())
	require.NoError(t, <-done)
	sending.Wait()
	readers.Wait()

	for i := range conns {
		for s := range senders {
			require.ErrorIs(t, sendErrs[i][s], ErrConnClosed, "conn %d sender %d: the error after Shutdown", i, s)
		}
	}
	total := 0
	for i := range cls {
		require.NoError(t, readErrs[i], "client %d", i)
		require.Equal(t, StatusGoingAway, codes[i], "client %d: the close after the messages", i)
		for s := range senders {
			n := accepted[i][s].Load()
			require.Equal(t, n, int64(got[i][s]), "client %d sender %d: messages Send accepted vs messages before the close", i, s)
			total += int(n)
		}
	}
	t.Logf("%d messages accepted and delivered before close 1001", total)
}

// readSends reads messages until the close frame, checking that each
// sender's are in order and intact; it counts them in got, answers the
// close and closes once the server has.
func readSends(c *wstest.Client, got *[4]int, code *StatusCode) error {
	c.Conn().SetReadDeadline(time.Now().Add(4 * wstest.Timeout))
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return fmt.Errorf("after %v messages per sender: %w", *got, err)
		}
		if f.Op == OpClose {
			if len(f.Payload) >= 2 {
				*code = StatusCode(binary.BigEndian.Uint16(f.Payload))
			}
			c.Conn().Write(wstest.Data(OpClose, true, f.Payload[:min(len(f.Payload), 2)]))
			for {
				if _, err := c.Reader().ReadByte(); err != nil {
					return c.Close() // EOF: our FIN ends the server's linger
				}
			}
		}
		if len(f.Payload) < 8 {
			return fmt.Errorf("a %d-byte message", len(f.Payload))
		}
		s := int(binary.BigEndian.Uint32(f.Payload))
		if s >= len(got) {
			return fmt.Errorf("sender %d?", s)
		}
		seq := got[s]
		if want := sendMsg(s, seq, 8+(seq*97)%3000); f.Op != OpBinary || string(f.Payload) != string(want) {
			return fmt.Errorf("sender %d: message %d differs (seq %d in it, %d bytes)", s, seq, binary.BigEndian.Uint32(f.Payload[4:]), len(f.Payload))
		}
		got[s]++
	}
}

// TestShutdownReportsForcedClients: two clients never answer the close
// 1001 (nor close), and a third does; once the third is gone the shutdown's
// context ends: Shutdown and Run return a *ShutdownError counting the two,
// which wraps the context's error. (Config.ShutdownTimeout's deadline is
// the same path: reactor TestShutdownDeadlineCloses, echo
// TestExitStatusForcedShutdown.)
func TestShutdownReportsForcedClients(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 2
	cfg.LingerTimeout = time.Minute // only the shutdown's end can close them
	srv, done := runServer(t, cfg, echoHandler)
	var silent [2]*wstest.Client
	for i := range silent {
		silent[i] = wstest.Dial(t, srv.Addr().String())
		silent[i].Write(t, wstest.Text([]byte("hi")))
		silent[i].ExpectMessage(t, OpText, []byte("hi"))
	}
	polite := wstest.Dial(t, srv.Addr().String()) // answers its close: not forced
	polite.Write(t, wstest.Text([]byte("hi")))
	polite.ExpectMessage(t, OpText, []byte("hi"))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel() // once the polite client is gone, and the server knows
		polite.Conn().SetReadDeadline(time.Now().Add(wstest.Timeout))
		f, err := polite.ReadFrame()
		if err == nil && f.Op == OpClose {
			polite.Conn().Write(wstest.Data(OpClose, true, f.Payload[:2]))
			polite.Reader().ReadByte() // the server's FIN
		}
		polite.Close()
		for end := time.Now().Add(wstest.Timeout); srv.Stats().Connections > 2 && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
	}()

	err := srv.ShutdownContext(ctx)
	var se *ShutdownError
	require.ErrorAs(t, err, &se, "Shutdown: %v", err)
	require.Equal(t, 2, se.Forced, "clients forced: %v", err)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrPoolsKept)
	require.Equal(t, err, <-done, "Run returns what Shutdown returned")
	require.Equal(t, err, srv.Shutdown(), "a second Shutdown returns the same")
	t.Logf("Shutdown: %v", err)
}

// TestShutdownReportsKeptPools: a handler retains a message's buffer and
// never releases it; the pool cannot be unmapped, and Shutdown says so with
// ErrPoolsKept (wrapping hugepage.ErrInUse), not with a log line only.
func TestShutdownReportsKeptPools(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers = 1
	var kept Buffer
	srv, done := runServer(t, cfg, HandlerFunc(func(e *Event) error {
		if e.Kind == MessageEvent {
			kept = e.Retain() // and never released
		}
		return nil
	}))
	c := wstest.Dial(t, srv.Addr().String())
	c.Write(t, wstest.Text([]byte("keep me")))
	require.Eventually(t, func() bool { return srv.Stats().MessagesIn == 1 }, wstest.Timeout, 5*time.Millisecond)
	c.Close()
	err := srv.Shutdown()
	require.ErrorIs(t, err, ErrPoolsKept, "Shutdown: %v", err)
	require.ErrorIs(t, err, hugepage.ErrInUse)
	var se *ShutdownError
	require.False(t, errors.As(err, &se), "nothing was forced: %v", err)
	require.Equal(t, err, <-done)
	require.Equal(t, "keep me", string(kept.Bytes()), "the retained bytes stay valid: the pool stays mapped")
	kept.Release()
}

// TestSendBusyWhenInboxFull: while the loop is held in a handler, Send fills
// the inbox (capacity 4) and then returns ErrBusy at once, never blocking;
// once the loop goes on, every message Send accepted is delivered, in order.
func TestSendBusyWhenInboxFull(t *testing.T) {
	hold, held := make(chan struct{}), make(chan *Conn, 1)
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.ReactorRing = 4
	srv := startServer(t, cfg, HandlerFunc(func(e *Event) error {
		if e.Kind == MessageEvent && string(e.Data) == "hold" {
			held <- e.Conn
			<-hold // the loop is busy
		}
		return nil
	}))
	c := wstest.Dial(t, srv.Addr().String())
	c.Write(t, wstest.Text([]byte("hold")))
	conn := <-held
	accepted := 0
	for ; accepted < 100; accepted++ {
		err := conn.Send(OpText, fmt.Appendf(nil, "%d", accepted))
		if errors.Is(err, ErrBusy) {
			break
		}
		require.NoError(t, err)
	}
	close(hold)
	require.Equal(t, 4, accepted, "Sends accepted before ErrBusy: the inbox's capacity")
	for i := range accepted {
		c.ExpectMessage(t, OpText, fmt.Appendf(nil, "%d", i))
	}
	require.NoError(t, conn.Send(OpText, []byte("after")))
	c.ExpectMessage(t, OpText, []byte("after"))
	c.Write(t, wstest.Close(1000, ""))
	c.ExpectClose(t, 1000, true)
}
