// Package wire is the WebSocket codec of package ws: the incremental frame
// header parser, the server header writer, in-place unmasking, the
// incremental UTF-8 validator and close payloads (RFC 6455 §5 and §7), and
// the strict parser of the opening handshake's request (request.go: RFC
// 9112 and RFC 6455 §4.2.1; HeadScanner refuses a bad line as soon as it
// arrives).
//
// Everything works on caller-owned bytes and never allocates: ParseHeader
// reads a header from the start of a buffer and says whether it is complete
// yet (a frame may arrive across reads), allowing the reserved bits of the
// extensions negotiated (RSV1 for permessage-deflate); Unmask works in
// place at any offset into the payload; ValidateUTF8 carries its state
// across frames and reads, so that a text message fails at its first bad
// byte. Failures are *CloseError values that carry the close code RFC 6455
// names for them; a refused request is a *RequestError with its HTTP status.
package wire
