package hugepage

import (
	"os"
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

// TestRegionCommitBacksPages: Commit backs the pages it is asked for at
// once (MADV_POPULATE_WRITE) and no more than Backed counts, again after a
// Decommit; with the kernel refusing it, the pages are left to faults.
func TestRegionCommitBacksPages(t *testing.T) {
	r, err := Reserve(4<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Free()
	plain := unsafe.Pointer(&r.Bytes()[0])
	const n = 100 << 10
	if err := r.Commit(n); err != nil {
		t.Fatal(err)
	}
	if populateRefused.Load() {
		t.Skip("skipped: this kernel refuses MADV_POPULATE_WRITE (Linux 5.14); regions are backed as written")
	}
	if got := rss(t, plain); got < n || got > r.Backed(n) {
		t.Fatalf("Commit(%d) backs %d bytes, want %d to %d", n, got, n, r.Backed(n))
	}
	if err := r.Commit(n / 2); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain); got > r.Backed(n) {
		t.Fatalf("a smaller Commit backs more: %d bytes", got)
	}
	if err := r.Decommit(0); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain); got != 0 {
		t.Fatalf("after Decommit the region holds %d bytes", got)
	}
	if err := r.Commit(n); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain); got < n {
		t.Fatalf("Commit after Decommit backs %d bytes, want %d", got, n)
	}

	populateRefused.Store(true)
	defer populateRefused.Store(false)
	r2, err := Reserve(4<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Free()
	if err := r2.Commit(n); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, unsafe.Pointer(&r2.Bytes()[0])); got != 0 {
		t.Fatalf("without MADV_POPULATE_WRITE Commit backs %d bytes, want none (faults)", got)
	}
}

// BenchmarkRegionFirstWrite is the cost of writing 1 MiB of a region whose
// pages are not backed yet: faulted in page by page as written, or backed
// by Commit first. ns/page is the number to compare.
func BenchmarkRegionFirstWrite(b *testing.B) {
	for _, populate := range []bool{false, true} {
		name := "fault"
		if populate {
			name = "commit"
		}
		b.Run(name, func(b *testing.B) {
			const size = 1 << 20
			r, err := Reserve(size, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Free()
			mem := r.Bytes()[:size]
			page := os.Getpagesize()
			for b.Loop() {
				if err := r.Decommit(0); err != nil {
					b.Fatal(err)
				}
				if populate {
					if err := r.Commit(size); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < size; i += page {
					mem[i] = 1
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size/page), "ns/page")
		})
	}
}
