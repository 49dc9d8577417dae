package hugepage

import (
	"testing"
	"unsafe"
)

// rss is the resident memory of the mapping holding addr, from smaps.
func rss(t *testing.T, addr unsafe.Pointer) int {
	t.Helper()
	f, err := smapsOf(uintptr(addr))
	if err != nil {
		t.Fatal(err)
	}
	return f["Rss"]
}

// TestRegionPaysForWhatIsWritten is the reason regions exist: reserving a
// 64 MiB frame takes no memory, writing 100 KiB of it takes about 100 KiB,
// writing into the huge part takes whole huge pages (at most Backed), and
// Decommit gives all of it back.
func TestRegionPaysForWhatIsWritten(t *testing.T) {
	r, err := Reserve(64<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Free()
	plain := unsafe.Pointer(&r.Bytes()[0])
	huge := unsafe.Pointer(&r.Bytes()[RegionPlainBytes])
	if n := rss(t, plain) + rss(t, huge); n != 0 {
		t.Fatalf("a fresh region holds %d bytes", n)
	}
	const n = 100 << 10
	b := r.Bytes()
	for i := range n {
		b[i] = byte(i)
	}
	if got := rss(t, plain); got < n || got > r.Backed(n) {
		t.Fatalf("after writing %d bytes the region holds %d (Backed %d)", n, got, r.Backed(n))
	}
	b[RegionPlainBytes+1] = 1
	got := rss(t, plain) + rss(t, huge)
	if got > r.Backed(RegionPlainBytes+2) {
		t.Fatalf("one byte into the huge part: %d bytes held, more than Backed %d", got, r.Backed(RegionPlainBytes+2))
	}
	t.Logf("one byte past the plain part holds %d KiB (huge pages: %v)", (got-rss(t, plain))>>10, r.huge)
	if err := r.Decommit(0); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain) + rss(t, huge); got != 0 {
		t.Fatalf("after Decommit the region holds %d bytes", got)
	}
	if b[5] != 0 {
		t.Fatal("decommitted bytes do not read as zero")
	}
}
