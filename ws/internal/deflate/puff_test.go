package deflate

import (
	"errors"
	"fmt"
)

// puff is a slow, plain DEFLATE decoder written from RFC 1951 §3.2 for the
// tests: a third implementation (after klauspost's and the standard
// library's) that also reports the longest back-reference distance and
// whether any reached before the message, so that the tests can check the
// server's window bits and its no-context-takeover promise exactly. The
// bit-at-a-time canonical Huffman decoding is zlib's puff.c algorithm.

var errPuff = errors.New("puff: invalid deflate data")

// puffResult is what decoding one message found.
type puffResult struct {
	out     []byte // the message
	maxDist int    // longest back-reference distance
	history bool   // a reference reached into the history before the message
	final   bool   // a block with BFINAL set ended the data
	unread  int    // whole input bytes after the last block
}

type bits struct {
	b   []byte
	pos int
	buf uint32
	cnt uint
}

func (r *bits) need(n uint) (int, error) {
	for r.cnt < n {
		if r.pos == len(r.b) {
			return 0, fmt.Errorf("%w: data cut short", errPuff)
		}
		r.buf |= uint32(r.b[r.pos]) << r.cnt
		r.pos++
		r.cnt += 8
	}
	v := int(r.buf & (1<<n - 1))
	r.buf >>= n
	r.cnt -= n
	return v, nil
}

type huff struct {
	count  [16]int
	symbol []int
}

// newHuff builds the canonical code for lengths; an incomplete code is
// allowed (RFC 1951 allows one distance code, or none), an over-subscribed
// one is not.
func newHuff(lengths []int) (*huff, error) {
	h := &huff{symbol: make([]int, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - h.count[l]
		if left < 0 {
			return nil, fmt.Errorf("%w: over-subscribed code", errPuff)
		}
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h, nil
}

func (r *bits) decode(h *huff) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.need(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+code-first], nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, fmt.Errorf("%w: no such code", errPuff)
}

var (
	lenBase  = [...]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [...]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [...]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = [...]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [...]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// puffMessage decodes a message's deflate data with the sync tail appended
// (RFC 7692 §7.2.2) after history, block by block, until a final block or
// the end of the input at a block boundary.
func puffMessage(data, history []byte) (puffResult, error) {
	in := append(append([]byte{}, data...), 0, 0, 0xff, 0xff)
	r := &bits{b: in}
	out := append([]byte{}, history...)
	var res puffResult
	for r.pos < len(r.b) || r.cnt >= 8 {
		final, err := r.need(1)
		if err != nil {
			return res, err
		}
		typ, err := r.need(2)
		if err != nil {
			return res, err
		}
		switch typ {
		case 0:
			out, err = r.stored(out)
		case 1:
			out, err = r.codes(out, len(history), &res, fixedLit, fixedDist)
		case 2:
			var lit, dist *huff
			if lit, dist, err = r.dynamic(); err == nil {
				out, err = r.codes(out, len(history), &res, lit, dist)
			}
		default:
			err = fmt.Errorf("%w: block type 3", errPuff)
		}
		if err != nil {
			return res, err
		}
		if final == 1 {
			res.final = true
			break
		}
	}
	res.out, res.unread = out[len(history):], len(r.b)-r.pos
	return res, nil
}

func (r *bits) stored(out []byte) ([]byte, error) {
	r.buf, r.cnt = 0, 0 // to the byte boundary
	if len(r.b)-r.pos < 4 {
		return nil, fmt.Errorf("%w: stored block header cut short", errPuff)
	}
	n := int(r.b[r.pos]) | int(r.b[r.pos+1])<<8
	if n != ^(int(r.b[r.pos+2])|int(r.b[r.pos+3])<<8)&0xffff {
		return nil, fmt.Errorf("%w: stored length complement", errPuff)
	}
	r.pos += 4
	if len(r.b)-r.pos < n {
		return nil, fmt.Errorf("%w: stored block cut short", errPuff)
	}
	out = append(out, r.b[r.pos:r.pos+n]...)
	r.pos += n
	return out, nil
}

var fixedLit, fixedDist = func() (*huff, *huff) {
	var l [288]int
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [30]int
	for i := range d {
		d[i] = 5
	}
	lit, _ := newHuff(l[:])
	dist, _ := newHuff(d[:])
	return lit, dist
}()

func (r *bits) dynamic() (*huff, *huff, error) {
	nlen, err1 := r.need(5)
	ndist, err2 := r.need(5)
	ncode, err3 := r.need(4)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, nil, err
	}
	nlen, ndist, ncode = nlen+257, ndist+1, ncode+4
	if nlen > 286 || ndist > 30 {
		return nil, nil, fmt.Errorf("%w: too many codes", errPuff)
	}
	var cl [19]int
	for i := range ncode {
		v, err := r.need(3)
		if err != nil {
			return nil, nil, err
		}
		cl[clOrder[i]] = v
	}
	clh, err := newHuff(cl[:])
	if err != nil {
		return nil, nil, err
	}
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist {
		sym, err := r.decode(clh)
		if err != nil {
			return nil, nil, err
		}
		if sym < 16 {
			lengths = append(lengths, sym)
			continue
		}
		rep, val := 0, 0
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return nil, nil, fmt.Errorf("%w: repeat with no length", errPuff)
			}
			val = lengths[len(lengths)-1]
			rep, err = r.need(2)
			rep += 3
		case 17:
			rep, err = r.need(3)
			rep += 3
		default:
			rep, err = r.need(7)
			rep += 11
		}
		if err != nil {
			return nil, nil, err
		}
		if len(lengths)+rep > nlen+ndist {
			return nil, nil, fmt.Errorf("%w: too many lengths", errPuff)
		}
		for range rep {
			lengths = append(lengths, val)
		}
	}
	if lengths[256] == 0 {
		return nil, nil, fmt.Errorf("%w: no end-of-block code", errPuff)
	}
	lit, err := newHuff(lengths[:nlen])
	if err != nil {
		return nil, nil, err
	}
	dist, err := newHuff(lengths[nlen:])
	return lit, dist, err
}

func (r *bits) codes(out []byte, start int, res *puffResult, lit, dist *huff) ([]byte, error) {
	for {
		sym, err := r.decode(lit)
		switch {
		case err != nil:
			return nil, err
		case sym < 256:
			out = append(out, byte(sym))
			continue
		case sym == 256:
			return out, nil
		case sym > 285:
			return nil, fmt.Errorf("%w: length code %d", errPuff, sym)
		}
		sym -= 257
		extra, err := r.need(lenExtra[sym])
		if err != nil {
			return nil, err
		}
		n := lenBase[sym] + extra
		ds, err := r.decode(dist)
		if err != nil {
			return nil, err
		}
		if ds > 29 {
			return nil, fmt.Errorf("%w: distance code %d", errPuff, ds)
		}
		extra, err = r.need(distExtr[ds])
		if err != nil {
			return nil, err
		}
		d := distBase[ds] + extra
		if d > len(out) {
			return nil, fmt.Errorf("%w: distance %d before the start", errPuff, d)
		}
		res.maxDist = max(res.maxDist, d)
		res.history = res.history || d > len(out)-start
		for range n {
			out = append(out, out[len(out)-d])
		}
	}
}
