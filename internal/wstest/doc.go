// Package wstest holds what the module's tests (and test programs such as
// cmd/soak) share to talk to a WebSocket server the way a client would, and
// the ways a client can get it wrong.
//
//   - frame.go: Frame, a client frame encoder with every field a test may
//     get wrong (FIN, RSV, opcode, forced length encoding, declared length,
//     no mask), and constructors for the usual frames.
//   - read.go: ReadFrame, a strict reader of server frames (RFC 6455 §5.1,
//     §5.2: no mask, minimal length).
//   - handshake.go: the opening handshake's request, key and accept value.
//   - client.go: Client, a raw client, and DialTimeout: they return errors,
//     so that programs can use them too.
//   - expect.go: Dial and the Client methods that take a testing.TB and fail
//     the test: Write, Next, ExpectMessage, ExpectClose, ExpectEOF.
//   - payload.go: deterministic binary and UTF-8 payloads.
//
// It sits at the bottom of the module: it imports gobwas/ws (for its
// opcodes and Cipher) and testify, and no package of ours, so that every
// package's tests may use it.
//
// A test against a running echo server at addr:
//
//	c := wstest.Dial(t, addr)
//	c.Write(t, wstest.Text([]byte("hello")))
//	c.ExpectMessage(t, gws.OpText, []byte("hello"))
//	c.Write(t, wstest.Close(1000, ""))
//	c.ExpectClose(t, 1000, true)
package wstest
