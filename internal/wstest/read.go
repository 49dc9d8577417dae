package wstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	gws "github.com/gobwas/ws"
)

// MaxFrame is the longest payload ReadFrame accepts: more than any test
// sends, and a bound on what a corrupt length can make it allocate.
const MaxFrame = 64 << 20

// Errors of ReadFrame for a frame header that breaks what RFC 6455 asks of
// a server (or that no test expects).
var (
	// ErrMasked: a server must not mask its frames (RFC 6455 §5.1).
	ErrMasked = errors.New("wstest: server frame is masked (RFC 6455 §5.1)")
	// ErrNonMinimal: the length must be in the minimal number of bytes
	// (RFC 6455 §5.2).
	ErrNonMinimal = errors.New("wstest: server frame length is not minimally encoded (RFC 6455 §5.2)")
	// ErrTooLong: the frame declares more than MaxFrame bytes.
	ErrTooLong = errors.New("wstest: server frame longer than MaxFrame")
)

// ReadFrame reads one frame a server sent, checking its header strictly:
// no mask, and the minimal length encoding. It allocates the payload. At a
// clean end of the connection between frames it returns io.EOF; a frame cut
// short is io.ErrUnexpectedEOF (wrapped). It sets no deadline: that is the
// caller's.
func ReadFrame(r io.Reader) (Frame, error) {
	var f Frame
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return f, err
	}
	f.Fin = h[0]&0x80 != 0
	f.Rsv = (h[0] >> 4) & 7
	f.Op = gws.OpCode(h[0] & 0x0f)
	if h[1]&0x80 != 0 {
		return f, ErrMasked
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if err := readMore(r, e[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
		if n < 126 {
			return f, fmt.Errorf("%w: %d in 16 bits", ErrNonMinimal, n)
		}
	case 127:
		var e [8]byte
		if err := readMore(r, e[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(e[:])
		if n <= 0xffff {
			return f, fmt.Errorf("%w: %d in 64 bits", ErrNonMinimal, n)
		}
	}
	if n > MaxFrame {
		return f, fmt.Errorf("%w: %d bytes", ErrTooLong, n)
	}
	f.Payload = make([]byte, n)
	if err := readMore(r, f.Payload); err != nil {
		return f, fmt.Errorf("wstest: reading %d payload bytes: %w", n, err)
	}
	return f, nil
}

// readMore reads the rest of a frame that has begun: an end of input here
// cuts the frame short, so io.EOF becomes io.ErrUnexpectedEOF.
func readMore(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
