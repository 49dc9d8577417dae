package deflate

import (
	"errors"
	"io"

	"github.com/klauspost/compress/flate"
)

// A compressor is klauspost/compress's flate.Writer: about 0.8-1.4 MiB of
// heap each (its window, hash table and token buffer), which is why a
// connection never owns one. Compressors holds them for one event loop:
//
//   - without context takeover (server_no_context_takeover), one writer per
//     window size, reset before every message;
//   - with context takeover, a few writers that keep the history of the
//     connection that used them last (the slots). A connection whose slot
//     was taken by another one compresses its next message without
//     history, which RFC 7692 allows (the history is what a message may
//     refer to, not what it must), and keeps that slot from then on.
//
// So a connection holds no compressor state while idle, whatever it
// negotiated, and a loop holds at most len(shared) + Slots writers.

// ErrShortOutput reports that the output writer refused bytes.
var ErrShortOutput = errors.New("deflate: output refused")

// Stream is one connection's handle on its loop's Compressors: which slot,
// if any, holds its history. The zero Stream holds none.
type Stream struct {
	id   uint64 // assigned by Compressors on first use; 0: none yet
	slot int32  // index into Compressors.slots + 1; 0: none
}

// Compressors are one event loop's compressors. Not safe for concurrent use.
type Compressors struct {
	level  int
	max    int // most slots
	slots  []slot
	shared [MaxWindowBits - MinWindowBits + 1]*flate.Writer
	out    forward
	ids    uint64
	clock  uint64
}

// slot is a writer that may keep one stream's history.
type slot struct {
	w     *flate.Writer
	bits  uint8
	owner uint64 // the stream whose history w holds; 0: none
	used  uint64 // clock at the last message, for least-recently-used reuse
}

// forward is the writers' output: it passes bytes on to the writer of the
// message being compressed, so that a slot's writer need not be reset (and
// lose its history) to write somewhere else.
type forward struct{ w io.Writer }

func (f *forward) Write(p []byte) (int, error) { return f.w.Write(p) }

// NewCompressors returns a loop's compressors for level (1 fastest .. 9
// smallest) keeping up to slots streams' histories.
func NewCompressors(level, slots int) *Compressors {
	return &Compressors{level: level, max: slots}
}

// Compress writes p as one compressed message to out: the deflate data,
// sync-flushed, with its final 00 00 ff ff still on (the caller removes it,
// RFC 7692 §7.2.1). bits is the window the peer allows (server window
// bits); keep says the stream may refer to its earlier messages (server
// context takeover). It does not allocate once the loop has its writers.
func (c *Compressors) Compress(st *Stream, p []byte, bits uint8, keep bool, out io.Writer) error {
	c.clock++
	var w *flate.Writer
	if keep {
		w = c.slotFor(st, bits)
	} else {
		w = c.writer(&c.shared[bits-MinWindowBits], bits)
		w.Reset(&c.out)
	}
	c.out.w = out
	_, err := w.Write(p)
	if err == nil {
		err = w.Flush()
	}
	c.out.w = nil
	if err != nil {
		c.Drop(st) // the writer's state is broken: reset it before its next use
		return ErrShortOutput
	}
	return nil
}

// Drop forgets st's history: its next message is compressed without
// reference to earlier ones. Call it when a message the stream sent did
// not go through its compressor (sent as it arrived, or uncompressed after
// all), and when the connection closes.
func (c *Compressors) Drop(st *Stream) {
	if s := c.owned(st); s != nil {
		s.owner = 0
	}
	st.slot = 0
}

// owned returns st's slot if it still holds st's history.
func (c *Compressors) owned(st *Stream) *slot {
	if st.slot == 0 {
		return nil
	}
	s := &c.slots[st.slot-1]
	if s.owner != st.id {
		return nil
	}
	return s
}

// slotFor returns the writer holding st's history, or gives st a slot: a
// free one of its window size, a new one while there are fewer than the
// maximum, else the least recently used (whose stream then starts over).
func (c *Compressors) slotFor(st *Stream, bits uint8) *flate.Writer {
	if s := c.owned(st); s != nil && s.bits == bits {
		s.used = c.clock
		return s.w
	}
	if st.id == 0 {
		c.ids++
		st.id = c.ids
	}
	i := c.pick(bits)
	s := &c.slots[i]
	if s.bits != bits {
		s.w, s.bits = nil, bits
	}
	s.w = c.writer(&s.w, bits)
	s.w.Reset(&c.out)
	s.owner, s.used = st.id, c.clock
	st.slot = int32(i + 1)
	return s.w
}

// pick chooses the slot for a stream that has none.
func (c *Compressors) pick(bits uint8) int {
	lru, lruSame := -1, -1
	for i := range c.slots {
		s := &c.slots[i]
		if s.bits == bits && s.owner == 0 {
			return i
		}
		if lru < 0 || s.used < c.slots[lru].used {
			lru = i
		}
		if s.bits == bits && (lruSame < 0 || s.used < c.slots[lruSame].used) {
			lruSame = i
		}
	}
	switch {
	case len(c.slots) < c.max || len(c.slots) == 0:
		c.slots = append(c.slots, slot{bits: bits})
		return len(c.slots) - 1
	case lruSame >= 0:
		return lruSame
	}
	return lru
}

// writer returns *w, making it first for the window size.
func (c *Compressors) writer(w **flate.Writer, bits uint8) *flate.Writer {
	if *w != nil {
		return *w
	}
	var err error
	if bits == MaxWindowBits {
		*w, err = flate.NewWriter(&c.out, c.level)
	} else {
		*w, err = flate.NewWriterWindow(&c.out, 1<<bits)
	}
	if err != nil {
		panic(err) // level and bits are validated when the server starts
	}
	return *w
}

// TrimTail removes the 00 00 ff ff that ends a sync-flushed message (RFC
// 7692 §7.2.1) and reports whether it was there.
func TrimTail(b []byte) ([]byte, bool) {
	n := len(b) - 4
	if n < 0 || b[n] != 0 || b[n+1] != 0 || b[n+2] != 0xff || b[n+3] != 0xff {
		return b, false
	}
	return b[:n], true
}
