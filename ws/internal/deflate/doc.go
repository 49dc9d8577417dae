// Package deflate is permessage-deflate (RFC 7692) for package ws: the
// negotiation of its parameters, and the compressors and inflater an event
// loop shares among its connections.
//
//   - negotiate.go: Negotiate parses the Sec-WebSocket-Extensions offers of
//     a request strictly (an offer with an unknown, duplicated or invalid
//     parameter is declined, and the next one tried) and writes the
//     response that states exactly what was agreed (Params).
//   - inflate.go: Inflater, one per loop, inflates a whole message from its
//     compressed payload into the caller's buffer, a piece at a time, so the
//     caller bounds the output (decompression bombs) and owns its memory;
//     Slide keeps a client's history window under context takeover.
//   - compress.go: Compressors, one set per loop: a writer per window size
//     for connections without context takeover, and a few history slots
//     for those with it, so that no idle connection holds compressor state.
//
// The deflate itself is github.com/klauspost/compress/flate: it compresses
// about 2.5 times faster than compress/flate at level 1 with no
// allocations after Reset, it limits the compression window below 32 KiB
// (NewWriterWindow: server_max_window_bits from 8 to 14), which the
// standard library cannot, and its inflater takes a history window at
// Reset. The package holds no per-connection state: the caller keeps each
// connection's Params, Stream and history window.
package deflate
