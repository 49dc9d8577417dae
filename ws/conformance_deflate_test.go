package ws_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
	"github.com/hioload-ws/hioload-ws/internal/wstest"
	"github.com/hioload-ws/hioload-ws/ws"
)

// Sections 12 and 13: permessage-deflate, as Autobahn|TestSuite's
// case12_x_x.py runs them. A case offers permessage-deflate, then sends
// messages one at a time, each a slice of a test file taken cyclically,
// compressed and auto-fragmented (frames of at most N compressed bytes),
// and waits for each echo: it must arrive compressed (stricter than
// Autobahn, which accepts any echo) and inflate to exactly what was sent.
// Section 12 uses the default offer on five kinds of data; section 13 the
// JSON data with seven offers. Each runs the 18 size/fragmentation pairs
// below: 216 cases.
//
// Autobahn's files are not in the repository: deflateData builds files of
// the same kinds and about the same sizes from a fixed seed.

// deflateSizes are Autobahn's MSG_SIZES: payload size and auto-fragment
// size (0: one frame).
var deflateSizes = []struct{ n, frag int }{
	{16, 0}, {64, 0}, {256, 0}, {1024, 0}, {4096, 0}, {8192, 0}, {16384, 0}, {32768, 0}, {65536, 0}, {131072, 0},
	{8192, 256}, {16384, 256}, {32768, 256}, {65536, 256}, {131072, 256}, {131072, 1024}, {131072, 4096}, {131072, 32768},
}

// deflateMessages is how many messages a case sends: 1000 as in Autobahn,
// unless HIOLOAD_DEFLATE_MESSAGES says otherwise; with -short or the race
// detector 20. scripts/test.sh runs the full count once, in its run
// without the race detector, against the first server configuration
// (docs/CONFORMANCE.md).
func deflateMessages(t testing.TB) int {
	if v := os.Getenv("HIOLOAD_DEFLATE_MESSAGES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "HIOLOAD_DEFLATE_MESSAGES")
		return n
	}
	if testenv.RaceEnabled || testing.Short() {
		return 20
	}
	return 1000
}

// The offers: Autobahn's default PerMessageDeflateOffer (it accepts
// client_no_context_takeover and lets the server choose its window), and
// section 13's (requestNoContextTakeover, requestMaxWindowBits) pairs.
const defaultOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

func offer13(noContext bool, bits int) string {
	o := defaultOffer
	if noContext {
		o += "; server_no_context_takeover"
	}
	if bits > 0 {
		o += fmt.Sprintf("; server_max_window_bits=%d", bits)
	}
	return o
}

var section13Offers = []struct {
	desc  string
	offer string
	// what the response must grant: server_no_context_takeover, and the
	// largest server window
	noContext bool
	bits      int
}{
	{"[(False, 0)]", offer13(false, 0), false, 15},
	{"[(True, 0)]", offer13(true, 0), true, 15},
	{"[(False, 8)]", offer13(false, 8), false, 8},
	{"[(False, 15)]", offer13(false, 15), false, 15},
	{"[(True, 8)]", offer13(true, 8), true, 8},
	{"[(True, 15)]", offer13(true, 15), true, 15},
	{"[(True, 8), (True, 0), (False, 0)]", offer13(true, 8) + ", " + offer13(true, 0) + ", " + offer13(false, 0), true, 8},
}

// deflateDataSets are section 12's kinds of data, in Autobahn's order.
var deflateDataSets = []struct {
	name string
	text bool
	size int
	make func(n int) []byte
}{
	{"JSON", true, 194237, jsonData},
	{"bitmap 512x512 bw", false, 263222, bitmapData},
	{"German text", false, 222218, germanText},
	{"HTML", true, 263160, htmlData},
	{"PDF", false, 1042328, pdfData},
}

var deflateFiles sync.Map // name -> []byte

func deflateData(i int) []byte {
	d := deflateDataSets[i]
	if v, ok := deflateFiles.Load(d.name); ok {
		return v.([]byte)
	}
	v, _ := deflateFiles.LoadOrStore(d.name, d.make(d.size))
	return v.([]byte)
}

// section12and13 is the 216 cases, each sending count messages.
func section12and13(count int) []confCase {
	var cs []confCase
	for j, d := range deflateDataSets {
		for i, s := range deflateSizes {
			cs = append(cs, confCase{
				fmt.Sprintf("12.%d.%d %s, %d-byte messages, fragments of %d", j+1, i+1, d.name, s.n, s.frag),
				steps(deflateRun(j, defaultOffer, false, 15, s.n, s.frag, count)),
			})
		}
	}
	for j, o := range section13Offers {
		for i, s := range deflateSizes {
			cs = append(cs, confCase{
				fmt.Sprintf("13.%d.%d JSON, offers %s, %d-byte messages, fragments of %d", j+1, i+1, o.desc, s.n, s.frag),
				steps(deflateRun(0, o.offer, o.noContext, o.bits, s.n, s.frag, count)),
			})
		}
	}
	return cs
}

// deflateRun is one case: the handshake with offer (whose response must
// grant server_no_context_takeover when noContext, and a server window of
// at most bits), then count messages of n bytes in fragments of frag, then
// the closing handshake.
func deflateRun(data int, offer string, noContext bool, bits, n, frag, count int) step {
	return func(t testing.TB, c *wstest.Client) {
		t.Helper()
		require.NoError(t, c.HandshakeOffer(c.Conn().RemoteAddr().String(), offer))
		d := c.Deflate
		require.NotNil(t, d, "permessage-deflate declined")
		if noContext {
			require.True(t, d.ServerNoContextTakeover, "server_no_context_takeover not granted")
		}
		if bits < 15 {
			require.NotZero(t, d.ServerMaxWindowBits, "server_max_window_bits not answered")
			require.LessOrEqual(t, d.ServerMaxWindowBits, bits)
		}
		file := deflateData(data)
		op := gws.OpBinary
		if deflateDataSets[data].text {
			op = gws.OpText
		}
		off := 0
		for range count {
			msg := cyclic(file, off, n)
			c.Write(t, wstest.Compressed(op, compressOnce(c, data, off, n, msg), frag))
			c.ExpectCompressed(t, op, msg)
			off = (off + n) % len(file)
		}
		c.Write(t, wstest.Close(1000, ""))
		c.ExpectClose(t, 1000, true)
	}
}

// cyclic is n bytes of file from off on, wrapping around (Autobahn's
// sendOne).
func cyclic(file []byte, off, n int) []byte {
	if off+n <= len(file) {
		return file[off : off+n]
	}
	b := make([]byte, 0, n)
	for len(b) < n {
		k := min(n-len(b), len(file)-off)
		b = append(b, file[off:off+k]...)
		off = 0
	}
	return b
}

// compressedMsgs caches the client's compressed messages: without client
// context (every section 12/13 offer asks for it) a message compresses to
// the same bytes in every case, and compressing is most of the client's
// work.
var compressedMsgs sync.Map // "data/off/n" -> []byte

func compressOnce(c *wstest.Client, data, off, n int, msg []byte) []byte {
	if !c.Deflate.ClientNoContextTakeover {
		return c.Deflate.Compress(msg)
	}
	key := fmt.Sprintf("%d/%d/%d", data, off, n)
	v, ok := compressedMsgs.Load(key)
	if !ok {
		v, _ = compressedMsgs.LoadOrStore(key, c.Deflate.Compress(msg))
	}
	c.Deflate.Standalone(v.([]byte), msg)
	return v.([]byte)
}

// TestConformanceDeflate runs sections 12 and 13 against both server
// configurations: the full count of messages against the first, at most 50
// against the second.
func TestConformanceDeflate(t *testing.T) {
	full := deflateMessages(t)
	checkNames(t, section12and13(full))
	for i, sc := range serverConfigs {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			count := full
			if i > 0 {
				count = min(full, 50)
			}
			addr := startEcho(t, func(c *ws.Config) {
				sc.mod(c)
				c.Compression.Enabled = true
			})
			runCases(t, addr, wstest.DialRaw, section12and13(count))
		})
	}
}

// The test files. Each is deterministic (seeded) and shaped like
// Autobahn's: a JSON document, an 8-bit grayscale BMP, German prose, an
// HTML page, and a PDF whose streams are mostly already compressed. The
// text ones are ASCII (escapes and entities for the rest), so that every
// cyclic slice is valid UTF-8.

func jsonData(n int) []byte {
	r := rand.New(rand.NewPCG(12, 1))
	names := []string{`M\u00fcller`, `Zo\u00eb`, `\u00d8rsted`, `Jos\u00e9`, `\u674e\u96f7`, "Anna", "Smith", "O'Brien"}
	b := []byte("[\n")
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, `  {"id": %d, "guid": "%08x-%04x", "isActive": %v, "balance": "$%d,%03d.%02d", "age": %d, "name": "%s", "tags": ["%s", "%s"], "latitude": %.6f, "longitude": %.6f},`+"\n",
			i, r.Uint32(), r.Uint32()&0xffff, r.IntN(2) == 0, r.IntN(10), r.IntN(1000), r.IntN(100), 20+r.IntN(60),
			names[r.IntN(len(names))], names[r.IntN(len(names))], names[r.IntN(len(names))], r.Float64()*180-90, r.Float64()*360-180)
	}
	return b[:n]
}

func bitmapData(n int) []byte {
	const w, h = 512, 512
	b := make([]byte, 0, n)
	b = append(b, 'B', 'M')
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 54+1024)
	b = binary.LittleEndian.AppendUint32(b, 40)
	b = binary.LittleEndian.AppendUint32(b, w)
	b = binary.LittleEndian.AppendUint32(b, h)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 8)
	b = append(b, make([]byte, 24)...)
	for i := range 256 {
		b = append(b, byte(i), byte(i), byte(i), 0)
	}
	r := rand.New(rand.NewPCG(12, 2))
	for y := range h {
		for x := range w {
			v := (x*x+y*y)/2048 + (x/64)*(y/64) + r.IntN(24) // smooth shapes and sensor noise
			b = append(b, byte(v))
		}
	}
	for len(b) < n {
		b = append(b, 0)
	}
	return b[:n]
}

func germanText(n int) []byte {
	r := rand.New(rand.NewPCG(12, 3))
	words := strings.Fields("Habe nun ach Philosophie Juristerei und Medizin und leider auch Theologie durchaus studiert mit heißem Bemühn " +
		"da steh ich nun ich armer Tor und bin so klug als wie zuvor heiße Magister heiße Doktor gar und ziehe schon an die zehen Jahr " +
		"herauf herab und quer und krumm meine Schüler an der Nase herum und sehe daß wir nichts wissen können das will mir schier das Herz verbrennen " +
		"Zwar bin ich gescheiter als all die Laffen Doktoren Magister Schreiber und Pfaffen mich plagen keine Skrupel noch Zweifel fürchte mich weder vor Hölle noch Teufel")
	var b []byte
	for len(b) < n {
		line := 4 + r.IntN(6)
		for i := range line {
			w := words[r.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b = append(b, w...)
			b = append(b, ' ')
		}
		b = append(b, ",.!;:"[r.IntN(5)], '\n')
	}
	return b[:n]
}

func htmlData(n int) []byte {
	r := rand.New(rand.NewPCG(12, 4))
	b := []byte("<!DOCTYPE html>\n<html lang=\"de\">\n<head><meta charset=\"utf-8\"><title>&Uuml;bersicht</title></head>\n<body>\n<table class=\"data\">\n")
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "  <tr id=\"row-%d\"><td class=\"name\"><a href=\"/item/%d?ref=list&amp;page=%d\">Artikel Nr. %d &ndash; Gr&ouml;&szlig;e %d</a></td><td class=\"price\">%d,%02d &euro;</td><td>%s</td></tr>\n",
			i, r.IntN(100000), i/50, i, 30+r.IntN(20), r.IntN(500), r.IntN(100), [3]string{"verf&uuml;gbar", "ausverkauft", "bald wieder da"}[r.IntN(3)])
	}
	return b[:n]
}

func pdfData(n int) []byte {
	r := rand.New(rand.NewPCG(12, 5))
	b := []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	for obj := 1; len(b) < n; obj++ {
		if obj%3 == 0 {
			b = fmt.Appendf(b, "%d 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>\nendobj\n", obj)
			continue
		}
		stream := wstest.Payload(2000+r.IntN(6000), uint64(obj)) // a Flate stream: incompressible
		b = fmt.Appendf(b, "%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n", obj, len(stream))
		b = append(b, stream...)
		b = append(b, "\nendstream\nendobj\n"...)
	}
	return b[:n]
}
