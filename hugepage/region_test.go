package hugepage

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// TestRegionWriteCommitDecommit runs a region through a buffer's life on
// every platform: writes after Commit read back, Backed grows with the
// bytes written and never shrinks below them, Decommit keeps the
// reservation usable, Free releases it.
func TestRegionWriteCommitDecommit(t *testing.T) {
	r, err := Reserve(5<<20+1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cap() != 6<<20 {
		t.Fatalf("Cap %d, want 6 MiB (rounded up to 2 MiB)", r.Cap())
	}
	prev := 0
	for _, n := range []int{1, 4096, 4097, 100 << 10, RegionPlainBytes, RegionPlainBytes + 1, 5 << 20, 6 << 20} {
		if err := r.Commit(n); err != nil {
			t.Fatalf("Commit(%d): %v", n, err)
		}
		b := r.Bytes()[:n]
		b[0] = 7
		b[n-1] = byte(n)
		if got := r.Backed(n); got < n || got < prev || got > r.Cap() {
			t.Fatalf("Backed(%d) = %d (previous %d, cap %d)", n, got, prev, r.Cap())
		} else {
			prev = got
		}
		if b[n-1] != byte(n) || n > 1 && b[0] != 7 {
			t.Fatalf("%d bytes: wrote and read back different bytes", n)
		}
	}
	if r.Backed(0) != 0 {
		t.Fatalf("Backed(0) = %d", r.Backed(0))
	}
	// Decommit from the middle: what is before it stays, what is after it
	// can be committed and written again.
	keep := 64 << 10
	copy(r.Bytes()[:keep], bytes.Repeat([]byte{9}, keep))
	if err := r.Decommit(keep); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Bytes()[:keep], bytes.Repeat([]byte{9}, keep)) {
		t.Fatal("Decommit lost bytes before its start")
	}
	if err := r.Commit(r.Cap()); err != nil {
		t.Fatal(err)
	}
	r.Bytes()[r.Cap()-1] = 1
	if err := r.Decommit(0); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(10); err != nil {
		t.Fatal(err)
	}
	r.Bytes()[9] = 1
	if !r.Release() {
		t.Fatal("Release of the only reference did not report the last")
	}
	if err := r.Free(); err != nil {
		t.Fatal(err)
	}
	if msg := mustPanic(t, func() { r.Free() }); msg == "" {
		t.Fatal("no message")
	}
}

func TestRegionRefs(t *testing.T) {
	r, err := Reserve(1, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Free()
	var last sync.WaitGroup
	const holders = 8
	got := make(chan bool, holders+1)
	for range holders {
		r.Retain()
	}
	for range holders + 1 {
		last.Add(1)
		go func() { defer last.Done(); got <- r.Release() }()
	}
	last.Wait()
	close(got)
	n := 0
	for l := range got {
		if l {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Releases reported the last reference, want 1", n)
	}
	r.Retain() // re-armed by the holder that kept it
	if !r.Release() {
		t.Fatal("re-armed region: Release did not report the last")
	}
	mustPanic(t, func() { r.Release() })
}

func TestRegionBadSize(t *testing.T) {
	for _, n := range []int{0, -1, maxArena + 1} {
		if _, err := Reserve(n, 0); !errors.Is(err, ErrRegion) {
			t.Errorf("Reserve(%d): %v, want ErrRegion", n, err)
		}
	}
}
