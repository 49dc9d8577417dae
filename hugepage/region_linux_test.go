package hugepage

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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
	r := newRegion(t, 64<<20)
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

// TestRegionPrefault: Prefault backs the pages it is asked for at once
// (MADV_POPULATE_WRITE) and no more than the page-rounded length, again
// after a Decommit; with the kernel refusing it, the pages are left to
// faults.
func TestRegionPrefault(t *testing.T) {
	r := newRegion(t, 4<<20)
	plain := unsafe.Pointer(&r.Bytes()[0])
	const n = 100<<10 + 1
	if err := r.Prefault(n); err != nil {
		if kernelAtLeast(5, 14) {
			t.Fatalf("Prefault on a kernel with MADV_POPULATE_WRITE: %v", err)
		}
		t.Skipf("skipped: this kernel (before 5.14) refuses MADV_POPULATE_WRITE (%v); regions are backed as written", err)
	}
	want := roundUp(n, os.Getpagesize())
	if got := rss(t, plain); got != want {
		t.Fatalf("Prefault(%d) backs %d bytes, want %d", n, got, want)
	}
	if err := r.Prefault(n / 2); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain); got != want {
		t.Fatalf("a smaller Prefault changed what is backed: %d bytes", got)
	}
	if err := r.Decommit(0); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain); got != 0 {
		t.Fatalf("after Decommit the region holds %d bytes", got)
	}
	if err := r.Prefault(n); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, plain); got != want {
		t.Fatalf("Prefault after Decommit backs %d bytes, want %d", got, want)
	}
	if err := r.Prefault(r.Cap() + 1); err == nil {
		t.Fatal("Prefault past the region's end: no error")
	}

	populateRefused.Store(true)
	defer populateRefused.Store(false)
	r2 := newRegion(t, 4<<20)
	if err := r2.Prefault(n); err != nil {
		t.Fatal(err)
	}
	if got := rss(t, unsafe.Pointer(&r2.Bytes()[0])); got != 0 {
		t.Fatalf("without MADV_POPULATE_WRITE Prefault backs %d bytes, want none (faults)", got)
	}
}

// kernelAtLeast reports whether the running kernel's release is at least
// major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// BenchmarkRegionFirstWrite is the cost of writing 1 MiB of a region whose
// pages are not backed yet: faulted in page by page as written, or backed
// by Prefault first. ns/page is the number to compare.
func BenchmarkRegionFirstWrite(b *testing.B) {
	for _, prefault := range []bool{false, true} {
		name := "fault"
		if prefault {
			name = "prefault"
		}
		b.Run(name, func(b *testing.B) {
			const size = 1 << 20
			r := newRegion(b, size)
			if prefault {
				if err := r.Prefault(size); err != nil {
					b.Skipf("skipped: Prefault: %v", err)
				}
			}
			mem := r.Bytes()[:size]
			page := os.Getpagesize()
			for b.Loop() {
				if err := r.Decommit(0); err != nil {
					b.Fatal(err)
				}
				if prefault {
					if err := r.Prefault(size); err != nil {
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
