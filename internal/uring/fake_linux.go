package uring

// A fake ring has no kernel behind it: it is for tests of code that drives
// a Ring (the reactor fuzzes its completion handling with one). Its rings
// are Go memory; an Enter takes the prepared SQEs into a list the test
// reads (TakeSubmitted) and never blocks; the test plays the kernel by
// posting completions (Post) and by filling provided buffers (FakeRecv).
type fakeKernel struct {
	sqHead, sqTail, sqFlags    uint32
	cqHead, cqTail, cqOverflow uint32
	submitted                  []SQE
	stalled                    bool // takes no SQEs (FakeStall)
	sqes                       []SQE
	cqes                       []CQE
}

// NewFake returns a fake ring with sq SQEs and cq CQEs (powers of two).
func NewFake(sq, cq int) *Ring {
	k := &fakeKernel{sqes: make([]SQE, sq), cqes: make([]CQE, cq)}
	return &Ring{
		fd: -1, enterFD: -1, fake: k,
		kSQHead: &k.sqHead, kSQTail: &k.sqTail, kSQFlags: &k.sqFlags,
		sqes: k.sqes, sqMask: uint32(sq - 1),
		kCQHead: &k.cqHead, kCQTail: &k.cqTail, kOverflow: &k.cqOverflow,
		cqes: k.cqes, cqMask: uint32(cq - 1),
	}
}

// enter takes every published SQE, as a kernel would at submission.
func (k *fakeKernel) enter() int {
	if k.stalled {
		return 0
	}
	n := 0
	for ; k.sqHead != k.sqTail; k.sqHead++ {
		k.submitted = append(k.submitted, k.sqes[k.sqHead&uint32(len(k.sqes)-1)])
		n++
	}
	return n
}

// FakeStall makes a fake ring's Enters take no SQEs (as a kernel that
// fails a submission with EBUSY or EAGAIN), until called with false.
func (r *Ring) FakeStall(stall bool) { r.fake.stalled = stall }

// TakeSubmitted returns the SQEs a fake ring's Enters took since the last
// call, in order.
func (r *Ring) TakeSubmitted() []SQE {
	s := r.fake.submitted
	r.fake.submitted = nil
	return s
}

// Post adds a completion to a fake ring's CQ; false when the CQ is full.
func (r *Ring) Post(c CQE) bool {
	k := r.fake
	if k.cqTail-k.cqHead == uint32(len(k.cqes)) {
		return false
	}
	k.cqes[k.cqTail&uint32(len(k.cqes)-1)] = c
	k.cqTail++
	return true
}

// newFakeBufRing is RegisterBufRing on a fake ring: the entries are Go
// memory, and the buffers added are remembered as slices for FakeRecv.
func (r *Ring) newFakeBufRing(entries int, group uint16, flags uint16) *BufRing {
	return &BufRing{r: r, group: group, mask: uint16(entries - 1), bufs: make([]ringBuf, entries),
		fake: &fakeBufs{inc: flags&PbufRingInc != 0, data: make([][]byte, entries)}}
}

// fakeBufs is what the fake kernel knows of a buffer ring.
type fakeBufs struct {
	inc  bool
	head uint16
	data [][]byte // by ring position: the memory Add was given
}

// FakeRecv plays the kernel receiving data into the ring's head buffer:
// it copies as much of data as the buffer has room for (all of the buffer
// without incremental consumption) and returns the bytes taken and the
// CQE flags a receive would carry (CQEFBuffer with the ID, CQEFBufMore
// while an incremental buffer has room left); ok is false when the ring
// is empty (the receive would fail with ENOBUFS).
func (b *BufRing) FakeRecv(data []byte) (n int, flags uint32, ok bool) {
	f := b.fake
	if f.head == b.tail {
		return 0, 0, false
	}
	pos := f.head & b.mask
	buf := f.data[pos]
	n = copy(buf, data)
	flags = CQEFBuffer | uint32(b.bufs[pos].bid)<<cqeBufferShift
	if f.inc && n < len(buf) {
		f.data[pos] = buf[n:]
		flags |= CQEFBufMore
		return n, flags, true
	}
	f.head++
	return n, flags, true
}
