package deflate

import (
	"bytes"
	"errors"
	"io"

	"github.com/klauspost/compress/flate"
)

// tail ends every message's deflate data (RFC 7692 §7.2.2): the empty
// stored block the sender removed (00 00 ff ff), then an empty final
// stored block, so that inflating a well-formed message ends with io.EOF
// rather than a short read.
var tail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// TailLen is how many bytes Begin appends to deflate data it may append to.
const TailLen = len(tail)

// ErrCorrupt reports deflate data that does not inflate: invalid blocks,
// data cut short, or bytes after a final block.
var ErrCorrupt = errors.New("deflate: invalid compressed data")

// Inflater inflates one message at a time; an event loop keeps one for all
// its connections. Its state is about 40 KiB of heap, whatever the number
// of connections. Not safe for concurrent use.
type Inflater struct {
	fr   io.ReadCloser // klauspost's inflater; it implements flate.Resetter
	br   bytes.Reader  // the message's deflate data, tail appended
	in   []byte        // the copy of that data when the caller cannot append to it
	done bool          // io.EOF was reached
	// Final reports whether the message's own data ended with a block
	// that has BFINAL set (RFC 7692 §7.2.3.3), known once Read returned
	// done.
	Final bool
}

// NewInflater returns an Inflater.
func NewInflater() *Inflater {
	return &Inflater{fr: flate.NewReader(bytes.NewReader(tail[:]))}
}

// Begin starts inflating a message whose payload (unmasked, RSV1 set on its
// first frame) is p, with window as the history the sender may refer to:
// the end of the earlier messages' inflated bytes under context takeover,
// nil otherwise. owned says p's capacity past its length belongs to the
// caller and may take the TailLen bytes the inflater appends (they must be
// writable); otherwise p is
// copied (copy: the deflate data must be contiguous with its tail for the
// fast byte-reader path; the caller counts it). Begin reports how many
// bytes it copied. p and window must stay unchanged until the message is
// read to the end.
func (f *Inflater) Begin(p, window []byte, owned bool) (copied int) {
	var in []byte
	if owned && cap(p)-len(p) >= len(tail) {
		in = append(p, tail[:]...)
	} else {
		f.in = append(append(f.in[:0], p...), tail[:]...)
		in, copied = f.in, len(p)
	}
	f.done, f.Final = false, false
	f.br.Reset(in)
	f.fr.(flate.Resetter).Reset(&f.br, window)
	return copied
}

// Read inflates the message's next bytes into dst and returns how many it
// wrote; done reports the end of the message (n may be non-zero then).
// err is ErrCorrupt for data that does not inflate.
func (f *Inflater) Read(dst []byte) (n int, done bool, err error) {
	if f.done {
		return 0, true, nil
	}
	for n < len(dst) {
		m, err := f.fr.Read(dst[n:])
		n += m
		switch {
		case err == io.EOF:
			return n, true, f.finish()
		case err != nil:
			return n, false, ErrCorrupt
		case m == 0:
			return n, false, ErrCorrupt // no progress: never with a bytes.Reader
		}
	}
	return n, false, nil
}

// finish checks where the final block ended: on the tail's own final block,
// which is then read to its last byte (the message ended after a sync
// flush, the usual case), or inside the message's data (it ended with a
// final block of its own, which RFC 7692 §7.2.3.4 allows), leaving at most
// the tail unread. More unread bytes are data after a final block. The
// inflater may read up to two bytes past the end of a Huffman block, so
// one or two stray bytes after a final block go unnoticed.
func (f *Inflater) finish() error {
	f.done = true
	switch unread := f.br.Len(); {
	case unread == 0:
		return nil
	case unread <= len(tail):
		f.Final = true
		return nil
	}
	return ErrCorrupt
}

// Release drops the references to the message's bytes and copies that Begin
// kept, so that the loop does not pin a large one.
func (f *Inflater) Release() {
	f.br.Reset(nil)
	if cap(f.in) > 64<<10 {
		f.in = nil
	}
}

// Slide appends p to the history window, keeping its last size bytes:
// after a message is inflated under client context takeover, window
// becomes the history for the next one. cap(window) must be at least size.
// It returns the window and the bytes it copied, at most size (copy: the
// window outlives the buffer of the message it comes from).
func Slide(window, p []byte, size int) ([]byte, int) {
	switch {
	case len(p) >= size:
		window = window[:size]
		return window, copy(window, p[len(p)-size:])
	case len(window)+len(p) <= size:
		return append(window, p...), len(p)
	}
	drop := len(window) + len(p) - size
	n := copy(window, window[drop:])
	return append(window[:n], p...), n + len(p)
}

// WindowSize is the history kept for a client's window bits: 2^bits, and at
// least 512 bytes, since a zlib-based client uses a 512-byte window when it
// agreed to 8 bits (zlib cannot compress with 256).
func WindowSize(bits uint8) int { return 1 << max(bits, 9) }
