package wstest

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Deflate is a client's side of permessage-deflate (RFC 7692), built on the
// standard library's compress/flate: an implementation independent of the
// server's. It is made from the server's Sec-WebSocket-Extensions response
// (ParseDeflateResponse), compresses the client's messages and inflates the
// server's, keeping each side's history as the response allows.
type Deflate struct {
	// The response's parameters; the window bits are 0 when absent.
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int
	ClientMaxWindowBits     int

	// NewCompressor makes the client's compressor; nil means
	// compress/flate at BestSpeed, whose window is always 32 KiB (right
	// unless the response asked for client_max_window_bits below 15 and
	// the client keeps context).
	NewCompressor func(w io.Writer) Compressor

	w    Compressor
	out  bytes.Buffer
	r    io.ReadCloser
	hist []byte // the server's inflated messages, last 32 KiB (server context takeover)
	// standalone is the last message compressed on its own (Standalone):
	// a server payload with exactly its bytes is known to inflate to it.
	standalone struct{ data, msg []byte }
}

// Compressor is what Deflate needs of a flate writer (compress/flate's and
// klauspost/compress's both qualify).
type Compressor interface {
	io.Writer
	Flush() error
	Reset(w io.Writer)
}

// ErrDeflateResponse: the server's Sec-WebSocket-Extensions response is not
// one a client may accept (RFC 7692 §7.1: a client fails the connection on
// an unknown, duplicated or invalid parameter).
var ErrDeflateResponse = errors.New("wstest: invalid permessage-deflate response")

// ParseDeflateResponse checks a server's Sec-WebSocket-Extensions value the
// way a strict client must: exactly one extension, permessage-deflate, with
// known parameters, each at most once, valid values, and
// client_max_window_bits only if offerClientBits (the offer had it).
func ParseDeflateResponse(v string, offerClientBits bool) (*Deflate, error) {
	parts := strings.Split(v, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" || strings.Contains(v, ",") {
		return nil, fmt.Errorf("%w: %q", ErrDeflateResponse, v)
	}
	d := &Deflate{}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		k, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
		if seen[k] {
			return nil, fmt.Errorf("%w: %s twice in %q", ErrDeflateResponse, k, v)
		}
		seen[k] = true
		var err error
		switch k {
		case "server_no_context_takeover":
			d.ServerNoContextTakeover, err = true, noValue(hasVal)
		case "client_no_context_takeover":
			d.ClientNoContextTakeover, err = true, noValue(hasVal)
		case "server_max_window_bits":
			d.ServerMaxWindowBits, err = bitsValue(val, hasVal)
		case "client_max_window_bits":
			if !offerClientBits {
				err = errors.New("not offered")
			}
			if err == nil {
				d.ClientMaxWindowBits, err = bitsValue(val, hasVal)
			}
		default:
			err = errors.New("unknown parameter")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v in %q", ErrDeflateResponse, k, err, v)
		}
	}
	return d, nil
}

func noValue(hasVal bool) error {
	if hasVal {
		return errors.New("takes no value")
	}
	return nil
}

func bitsValue(v string, hasVal bool) (int, error) {
	n, err := strconv.Atoi(v)
	if !hasVal || err != nil || n < 8 || n > 15 || strconv.Itoa(n) != v {
		return 0, errors.New("want a window size 8..15")
	}
	return n, nil
}

// tail is what RFC 7692 §7.2.2 appends before inflating (00 00 ff ff), and
// an empty final block so that the inflater ends with io.EOF.
var tail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// Compress returns p compressed as one message's payload (RFC 7692 §7.2.1:
// sync-flushed, the final 00 00 ff ff removed), keeping the compressor's
// history for the next message unless the response said
// client_no_context_takeover.
func (d *Deflate) Compress(p []byte) []byte {
	d.out.Reset()
	if d.w == nil {
		if d.NewCompressor != nil {
			d.w = d.NewCompressor(&d.out)
		} else {
			w, err := flate.NewWriter(&d.out, flate.BestSpeed)
			if err != nil {
				panic(err)
			}
			d.w = w
		}
	} else if d.ClientNoContextTakeover {
		d.w.Reset(&d.out)
	}
	if _, err := d.w.Write(p); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	if err := d.w.Flush(); err != nil {
		panic(err)
	}
	b := d.out.Bytes()
	if !bytes.HasSuffix(b, tail[:4]) {
		panic("wstest: sync flush did not end with 00 00 ff ff")
	}
	data := bytes.Clone(b[:len(b)-4])
	if d.ClientNoContextTakeover {
		d.Standalone(data, p)
	}
	return data
}

// Standalone records that data is msg compressed on its own, by a
// compressor without history: its back-references stay inside it, so
// whatever history an inflater has, data inflates to msg. Inflate then
// answers a server payload of exactly those bytes (an echo sent as it
// arrived) with msg without inflating it again, which is most of a
// compressed echo test's time. data and msg must not change afterwards.
func (d *Deflate) Standalone(data, msg []byte) {
	d.standalone.data, d.standalone.msg = data, msg
}

// Inflate returns the message a server's compressed payload carries,
// using (and extending) the server's history unless the response said
// server_no_context_takeover. It fails on data that does not inflate, on
// data after the end of the message, and on a message over max bytes.
func (d *Deflate) Inflate(p []byte, max int) ([]byte, error) {
	if s := d.standalone; s.data != nil && len(s.msg) <= max && bytes.Equal(p, s.data) {
		d.remember(s.msg)
		return bytes.Clone(s.msg), nil
	}
	in := bytes.NewReader(append(bytes.Clone(p), tail...))
	var dict []byte
	if !d.ServerNoContextTakeover {
		dict = d.hist
	}
	if d.r == nil {
		d.r = flate.NewReaderDict(in, dict)
	} else if err := d.r.(flate.Resetter).Reset(in, dict); err != nil {
		return nil, err
	}
	msg, err := io.ReadAll(io.LimitReader(d.r, int64(max)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("wstest: inflating %d bytes: %w", len(p), err)
	case len(msg) > max:
		return nil, fmt.Errorf("wstest: message inflates to more than %d bytes", max)
	case in.Len() > len(tail):
		return nil, fmt.Errorf("wstest: %d bytes after the final deflate block", in.Len()-len(tail))
	}
	d.remember(msg)
	return msg, nil
}

// remember adds a server message to the history its next ones may refer
// to (server context takeover).
func (d *Deflate) remember(msg []byte) {
	if d.ServerNoContextTakeover {
		return
	}
	d.hist = append(d.hist, msg...)
	if len(d.hist) > 32<<10 {
		d.hist = append(d.hist[:0], d.hist[len(d.hist)-32<<10:]...)
	}
}
