package deflate

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// jsonish is n bytes of text that compresses like a JSON feed: the same
// keys over and over with varying values.
func jsonish(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var b []byte
	for len(b) < n {
		b = fmt.Appendf(b, `{"sym":"S%03d","px":%d.%02d,"qty":%d,"side":"%s"}`+"\n",
			r.IntN(400), r.IntN(5000), r.IntN(100), r.IntN(1e5), [2]string{"buy", "sell"}[r.IntN(2)])
	}
	return b[:n]
}

// testData are the kinds of payload the tests compress: text, incompressible
// bytes, one repeated byte (a high ratio).
func testData(n int, seed uint64) map[string][]byte {
	return map[string][]byte{
		"json":   jsonish(n, seed),
		"random": wstest.Payload(n, seed),
		"zeros":  make([]byte, n),
	}
}

// stdCompress compresses msgs as consecutive messages with the standard
// library (context kept unless reset), each sync-flushed and trimmed.
func stdCompress(t testing.TB, msgs [][]byte, reset bool) [][]byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	require.NoError(t, err)
	var out [][]byte
	for _, m := range msgs {
		buf.Reset()
		if reset {
			w.Reset(&buf)
		}
		_, err := w.Write(m)
		require.NoError(t, err)
		require.NoError(t, w.Flush())
		b, ok := TrimTail(buf.Bytes())
		require.True(t, ok)
		out = append(out, bytes.Clone(b))
	}
	return out
}

// inflateAll reads a begun message to its end in reads of at most chunk
// bytes.
func inflateAll(f *Inflater, chunk, max int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for len(out) <= max {
		n, done, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil || done {
			return out, err
		}
	}
	return out, fmt.Errorf("over %d bytes", max)
}

func TestInflate(t *testing.T) {
	f := NewInflater()
	for _, n := range []int{0, 1, 100, 70000, 300000} {
		for kind, msg := range testData(n, 1) {
			data := stdCompress(t, [][]byte{msg}, true)[0]
			for _, chunk := range []int{1, 7, 4096, 1 << 20} {
				if chunk == 1 && n > 1000 {
					continue
				}
				for _, owned := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s %d bytes, reads of %d, owned %v", kind, n, chunk, owned), func(t *testing.T) {
						in := bytes.Clone(data)
						if owned {
							in = append(make([]byte, 0, len(in)+len(tail)), in...)
						}
						copied := f.Begin(in, nil, owned)
						require.Equal(t, map[bool]int{true: 0, false: len(in)}[owned], copied)
						got, err := inflateAll(f, chunk, n)
						require.NoError(t, err)
						require.True(t, bytes.Equal(msg, got), "first difference at %d", wstest.FirstDiff(msg, got))
						require.False(t, f.Final)
						require.Equal(t, data, in, "the caller's bytes are unchanged")
						f.Release()
					})
				}
			}
		}
	}
}

// TestInflateWindow inflates messages compressed with context takeover,
// each with the window Slide kept from the ones before.
func TestInflateWindow(t *testing.T) {
	var msgs [][]byte
	for i := range 20 {
		msgs = append(msgs, jsonish(50+i*311, uint64(i)))
	}
	data := stdCompress(t, msgs, false)
	size := 1 << 15 // compress/flate's window: the largest there is
	f := NewInflater()
	window := make([]byte, 0, size)
	for i, d := range data {
		f.Begin(d, window, false)
		got, err := inflateAll(f, 1000, 1<<20)
		require.NoError(t, err, "message %d", i)
		require.Equal(t, msgs[i], got, "message %d", i)
		window, _ = Slide(window, got, size)
	}
}

func TestInflateFinalBlock(t *testing.T) {
	f := NewInflater()
	msg := jsonish(5000, 3)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 5)
	w.Write(msg)
	w.Close() // a final block, no sync flush
	data := buf.Bytes()

	f.Begin(data, nil, false)
	got, err := inflateAll(f, 512, 1<<20)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	require.True(t, f.Final, "the message ended with its own final block")

	f.Begin(append(bytes.Clone(data), make([]byte, 20)...), nil, false)
	_, err = inflateAll(f, 512, 1<<20)
	require.ErrorIs(t, err, ErrCorrupt, "bytes after the final block")
}

func TestInflateCorrupt(t *testing.T) {
	f := NewInflater()
	msg := jsonish(3000, 4)
	data := stdCompress(t, [][]byte{msg}, true)[0]
	for name, in := range map[string][]byte{
		"block type 3":        {0x07},
		"cut mid-block":       data[:len(data)/2],
		"stored length wrong": {0x00, 0x05, 0x00, 0x00, 0x00, 'a'},
		"garbage":             wstest.Payload(100, 9),
	} {
		t.Run(name, func(t *testing.T) {
			f.Begin(in, nil, false)
			_, err := inflateAll(f, 4096, 1<<20)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

// TestInflateBomb: a message of 4 MiB of zeros compresses to about 4 KiB;
// the caller stops it at its limit, reading nothing beyond.
func TestInflateBomb(t *testing.T) {
	f := NewInflater()
	data := stdCompress(t, [][]byte{make([]byte, 4<<20)}, true)[0]
	require.Less(t, len(data), 32<<10)
	f.Begin(data, nil, false)
	buf := make([]byte, 64<<10)
	n, done, err := f.Read(buf)
	require.NoError(t, err)
	require.False(t, done)
	require.Equal(t, len(buf), n, "Read fills the room it is given and stops")
}

func TestSlide(t *testing.T) {
	w := make([]byte, 0, 8)
	for _, tc := range []struct {
		p      string
		want   string
		copied int
	}{
		{"", "", 0},
		{"abc", "abc", 3},
		{"defgh", "abcdefgh", 5},
		{"ij", "cdefghij", 8},
		{"0123456789", "23456789", 8},
		{"x", "3456789x", 8},
	} {
		var n int
		w, n = Slide(w, []byte(tc.p), 8)
		require.Equal(t, tc.want, string(w), "after %q", tc.p)
		require.Equal(t, tc.copied, n, "after %q", tc.p)
		require.Equal(t, 8, cap(w))
	}
	require.Equal(t, 512, WindowSize(8))
	require.Equal(t, 512, WindowSize(9))
	require.Equal(t, 32768, WindowSize(15))
}

func TestTrimTail(t *testing.T) {
	b, ok := TrimTail([]byte{1, 2, 0, 0, 0xff, 0xff})
	require.True(t, ok)
	require.Equal(t, []byte{1, 2}, b)
	for _, in := range [][]byte{nil, {0, 0, 0xff}, {0, 1, 0xff, 0xff}} {
		b, ok := TrimTail(in)
		require.False(t, ok)
		require.Equal(t, in, b)
	}
}

// TestCompress checks every window size, with and without context
// takeover, with more streams than slots: each message decodes (by puff,
// with the client's history) to what was compressed, never refers further
// back than the window, and without context takeover never before itself.
func TestCompress(t *testing.T) {
	for bits := uint8(MinWindowBits); bits <= MaxWindowBits; bits++ {
		for _, keep := range []bool{false, true} {
			t.Run(fmt.Sprintf("bits %d keep %v", bits, keep), func(t *testing.T) {
				c := NewCompressors(1, 2)
				streams := make([]Stream, 3)
				hist := make([][]byte, 3) // each client's inflated history
				historyUsed := false
				var out bytes.Buffer
				for i := range 40 {
					s := i % 3
					if i >= 20 {
						s = i % 2 // two streams for two slots: history stays
					}
					msg := jsonish(100+i*97, uint64(i))
					if i%7 == 0 {
						msg = wstest.Payload(300+i, uint64(i))
					}
					out.Reset()
					require.NoError(t, c.Compress(&streams[s], msg, bits, keep, &out))
					data, ok := TrimTail(out.Bytes())
					require.True(t, ok, "ends with a sync flush")
					res, err := puffMessage(data, hist[s])
					require.NoError(t, err)
					require.Equal(t, msg, res.out)
					require.LessOrEqual(t, res.maxDist, 1<<bits, "window of %d bits", bits)
					require.False(t, res.final)
					require.Zero(t, res.unread)
					if !keep {
						require.False(t, res.history, "refers to an earlier message without context takeover")
					}
					historyUsed = historyUsed || res.history
					hist[s] = append(hist[s], msg...)
				}
				if keep {
					require.True(t, historyUsed, "context takeover never used the history")
				}
			})
		}
	}
}

// TestCompressDrop: after Drop, the next message does not refer to the
// stream's earlier ones.
func TestCompressDrop(t *testing.T) {
	c := NewCompressors(1, 4)
	var st Stream
	var out bytes.Buffer
	msg := jsonish(2000, 1)
	require.NoError(t, c.Compress(&st, msg, 15, true, &out))
	out.Reset()
	require.NoError(t, c.Compress(&st, msg, 15, true, &out))
	data, _ := TrimTail(out.Bytes())
	res, err := puffMessage(data, msg)
	require.NoError(t, err)
	require.True(t, res.history, "the same message again refers to the first")
	c.Drop(&st)
	out.Reset()
	require.NoError(t, c.Compress(&st, msg, 15, true, &out))
	data, _ = TrimTail(out.Bytes())
	res, err = puffMessage(data, append(bytes.Clone(msg), msg...))
	require.NoError(t, err)
	require.False(t, res.history)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestCompressOutputRefused(t *testing.T) {
	c := NewCompressors(1, 1)
	var st Stream
	require.ErrorIs(t, c.Compress(&st, jsonish(100000, 1), 15, true, failWriter{}), ErrShortOutput)
	var out bytes.Buffer
	msg := jsonish(1000, 2)
	require.NoError(t, c.Compress(&st, msg, 15, true, &out), "the writer recovers")
	data, _ := TrimTail(out.Bytes())
	res, err := puffMessage(data, nil)
	require.NoError(t, err)
	require.Equal(t, msg, res.out)
}

// TestAllocs: compressing and inflating a message allocate nothing once
// the writers exist.
func TestAllocs(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	c := NewCompressors(1, 2)
	f := NewInflater()
	var st Stream
	out := bytes.NewBuffer(make([]byte, 0, 64<<10))
	dst := make([]byte, 32<<10)
	window := make([]byte, 0, 32<<10)
	for _, n := range []int{100, 1 << 10, 3000, 16 << 10} {
		msg := jsonish(n, 1)
		data := stdCompress(t, [][]byte{msg}, true)[0]
		run := func() {
			out.Reset()
			if err := c.Compress(&st, msg, 15, true, out); err != nil {
				t.Fatal(err)
			}
			f.Begin(data, window, false)
			n, done, err := f.Read(dst)
			if err != nil || !done || n != len(msg) {
				t.Fatal(n, done, err)
			}
			window, _ = Slide(window, dst[:n], 32<<10)
		}
		run()
		require.Zero(t, testing.AllocsPerRun(100, run), "%d bytes", n)
	}
}

// BenchmarkCompress compares the loop's compressors with the standard
// library's at the same level (the reason for klauspost/compress).
func BenchmarkCompress(b *testing.B) {
	for _, n := range []int{1 << 10, 16 << 10} {
		var msgs [64][]byte // more than a window holds, so that the history helps only as it would
		for i := range msgs {
			msgs[i] = jsonish(n, uint64(i))
		}
		msg := msgs[0]
		out := bytes.NewBuffer(make([]byte, 0, 2*n))
		for _, keep := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/keep=%v", wstest.SizeName(n), keep), func(b *testing.B) {
				c := NewCompressors(1, 2)
				var st Stream
				b.SetBytes(int64(n))
				b.ReportAllocs()
				total, i := 0, 0
				for b.Loop() {
					out.Reset()
					c.Compress(&st, msgs[i%len(msgs)], 15, keep, out)
					total += out.Len()
					i++
				}
				b.ReportMetric(float64(total)/float64(i), "bytes/msg")
			})
		}
		b.Run(wstest.SizeName(n)+"/stdlib", func(b *testing.B) {
			w, _ := flate.NewWriter(out, flate.BestSpeed)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				w.Reset(out)
				w.Write(msg)
				w.Flush()
			}
			b.ReportMetric(float64(out.Len()), "bytes/msg")
		})
	}
}

func BenchmarkInflate(b *testing.B) {
	for _, n := range []int{1 << 10, 16 << 10} {
		msg := jsonish(n, 1)
		data := stdCompress(b, [][]byte{msg}, true)[0]
		dst := make([]byte, n+1)
		b.Run(wstest.SizeName(n), func(b *testing.B) {
			f := NewInflater()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				f.Begin(data, nil, false)
				f.Read(dst)
			}
		})
		b.Run(wstest.SizeName(n)+"/stdlib", func(b *testing.B) {
			in := append(bytes.Clone(data), tail[:]...)
			var br bytes.Reader
			r := flate.NewReader(&br)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				br.Reset(in)
				r.(flate.Resetter).Reset(&br, nil)
				io.ReadFull(r, dst[:n])
			}
		})
	}
}

// FuzzInflate inflates arbitrary data: no panic, no endless loop, at most
// the room given; reading in small pieces gives what one big read gives;
// and what inflates agrees with puff (the data with the sync tail).
func FuzzInflate(f *testing.F) {
	f.Add([]byte{0x07}, []byte(nil))
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, []byte(nil)) // RFC 7692 §7.2.3.1 "Hello"
	f.Add([]byte{0xf2, 0x00, 0x11, 0x00, 0x00}, []byte("Hello"))         // §7.2.3.2, sharing the window
	f.Add([]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e', 'l', 'l', 'o', 0x00}, []byte(nil))
	f.Add([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, []byte(nil)) // BFINAL set
	f.Add(stdCompress(f, [][]byte{jsonish(3000, 1)}, true)[0], []byte(nil))
	const max = 1 << 20
	inf, inf2 := NewInflater(), NewInflater()
	f.Fuzz(func(t *testing.T, data, window []byte) {
		if len(window) > 32<<10 {
			window = window[len(window)-32<<10:]
		}
		inf.Begin(data, window, false)
		whole, errWhole := inflateAll(inf, max+1, max)
		inf2.Begin(data, window, false)
		pieces, errPieces := inflateAll(inf2, 13, max)
		if (errWhole == nil) != (errPieces == nil) || !bytes.Equal(whole, pieces) {
			t.Fatalf("one read: %d bytes, %v; reads of 13: %d bytes, %v", len(whole), errWhole, len(pieces), errPieces)
		}
		if errWhole != nil {
			return
		}
		ref, err := puffMessage(data, window)
		if err == nil && !bytes.Equal(ref.out, whole) {
			t.Fatalf("inflated %d bytes, puff %d (first difference at %d)", len(whole), len(ref.out), wstest.FirstDiff(whole, ref.out))
		}
	})
}

// FuzzCompress compresses arbitrary messages with every window size and
// checks them with puff.
func FuzzCompress(f *testing.F) {
	f.Add([]byte("hello hello hello hello"), []byte("hello"), uint8(0), true)
	f.Add(jsonish(5000, 2), jsonish(3000, 3), uint8(7), true)
	f.Add(make([]byte, 70000), []byte{}, uint8(3), false)
	c := NewCompressors(1, 2)
	f.Fuzz(func(t *testing.T, first, second []byte, bits uint8, keep bool) {
		bits = MinWindowBits + bits%(MaxWindowBits-MinWindowBits+1)
		var st Stream
		defer c.Drop(&st)
		var hist []byte
		for _, msg := range [][]byte{first, second} {
			var out bytes.Buffer
			if err := c.Compress(&st, msg, bits, keep, &out); err != nil {
				t.Fatal(err)
			}
			data, ok := TrimTail(out.Bytes())
			if !ok {
				t.Fatalf("no sync flush at the end")
			}
			res, err := puffMessage(data, hist)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.out, msg) || res.maxDist > 1<<bits || (!keep && res.history) {
				t.Fatalf("bits %d keep %v: %d bytes back as %d, distance %d, history %v", bits, keep, len(msg), len(res.out), res.maxDist, res.history)
			}
			hist = append(hist, msg...)
		}
	})
}

// BenchmarkInflateWindow is BenchmarkInflate under client context takeover:
// the history window goes in (Begin) and the message is slid onto it.
func BenchmarkInflateWindow(b *testing.B) {
	for _, n := range []int{1 << 10, 16 << 10} {
		var msgs [64][]byte
		for i := range msgs {
			msgs[i] = jsonish(n, uint64(i))
		}
		var data [64][]byte
		for i, d := range stdCompress(b, msgs[:], false) {
			data[i] = d
		}
		b.Run(wstest.SizeName(n), func(b *testing.B) {
			f := NewInflater()
			dst := make([]byte, n+1)
			window := make([]byte, 0, 32<<10)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%len(data) == 0 {
					window = window[:0] // the compressor's stream starts over
				}
				f.Begin(data[i%len(data)], window, false)
				m, _, err := f.Read(dst)
				if err != nil || m != n {
					b.Fatal(m, err)
				}
				window, _ = Slide(window, dst[:m], 32<<10)
				i++
			}
		})
	}
}
