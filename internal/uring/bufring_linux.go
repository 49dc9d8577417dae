package uring

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufRing is a ring of provided buffers (IORING_REGISTER_PBUF_RING, 5.19;
// io_uring_register_buf_ring(3)): the application adds buffers at the tail
// and the kernel takes one at the head whenever an operation with
// SQEBufferSelect and this group needs memory, naming it in the
// completion's BufferID.
//
// With PbufRingInc (6.12) a buffer is consumed incrementally: each
// completion takes only the bytes it got, continuing where the previous
// one of the same buffer ended, and CQEFBufMore says that the kernel keeps
// the buffer for more; a completion without it means the kernel is done
// with the buffer. Without PbufRingInc every completion consumes a whole
// buffer.
//
// An operation that finds the ring empty fails with ENOBUFS (a multishot
// receive ends; the data stays in the socket): add buffers and arm it
// again.
type BufRing struct {
	r     *Ring
	group uint16
	mask  uint16
	tail  uint16 // our tail; Publish shows it to the kernel
	bufs  []ringBuf
	mem   []byte
	fake  *fakeBufs // on a fake ring
}

// ringBuf is struct io_uring_buf. The ring's tail overlays the resv field
// of entry 0, so entries are written field by field, never whole.
type ringBuf struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16
}

// RegisterBufRing maps a ring of entries provided buffers (a power of two,
// at most 32768) and registers it as buffer group group with flags (0 or
// PbufRingInc). The ring starts empty.
func (r *Ring) RegisterBufRing(entries int, group uint16, flags uint16) (*BufRing, error) {
	if entries < 1 || entries > maxEntries || entries&(entries-1) != 0 {
		return nil, fmt.Errorf("uring: buffer ring of %d entries: want a power of two up to %d", entries, maxEntries)
	}
	if r.fake != nil {
		return r.newFakeBufRing(entries, group, flags), nil
	}
	size := (entries*int(unsafe.Sizeof(ringBuf{})) + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap buffer ring", err)
	}
	reg := bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), ringEntries: uint32(entries), bgid: group, flags: flags}
	if _, err := r.register(registerPbufRing, unsafe.Pointer(&reg), 1); err != nil {
		unix.Munmap(mem)
		return nil, os.NewSyscallError("io_uring_register PBUF_RING", err)
	}
	b := &BufRing{r: r, group: group, mask: uint16(entries - 1), mem: mem,
		bufs: unsafe.Slice((*ringBuf)(unsafe.Pointer(&mem[0])), entries)}
	return b, nil
}

// Group is the buffer group ID to put in an SQE's BufGroup.
func (b *BufRing) Group() uint16 { return b.group }

// Entries is the ring's capacity.
func (b *BufRing) Entries() int { return int(b.mask) + 1 }

// Add queues buf (len(buf) bytes at its address) as buffer bid; Publish
// makes the queued buffers visible to the kernel. The memory must stay
// valid and untouched until a completion hands it back.
func (b *BufRing) Add(buf []byte, bid uint16) {
	e := &b.bufs[b.tail&b.mask]
	e.addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	e.len = uint32(len(buf))
	e.bid = bid
	if b.fake != nil {
		b.fake.data[b.tail&b.mask] = buf
	}
	b.tail++
}

// Publish makes the buffers added since the last Publish available to the
// kernel.
func (b *BufRing) Publish() {
	// The tail is the u16 at byte 14 of the ring (entry 0's resv); Go has
	// no 16-bit atomic store, so entry 0's bid (bytes 12-13, which the
	// kernel never writes) is stored again with it, as one 32-bit release
	// store. Little-endian layout: amd64 and arm64.
	word := (*uint32)(unsafe.Pointer(&b.bufs[0].bid))
	atomic.StoreUint32(word, uint32(b.tail)<<16|uint32(b.bufs[0].bid))
}

// Unregister removes the group from the ring and unmaps the ring. Call it
// when no operation can select a buffer any more.
func (b *BufRing) Unregister() error {
	if b.fake != nil {
		b.bufs = nil
		return nil
	}
	reg := bufReg{bgid: b.group}
	_, err := b.r.register(unregisterPbufRing, unsafe.Pointer(&reg), 1)
	unix.Munmap(b.mem)
	b.mem, b.bufs = nil, nil
	return os.NewSyscallError("io_uring_register UNREGISTER_PBUF_RING", err)
}
