package hugepage

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

func TestGetClassAndAlignment(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	tests := []struct {
		n, wantCap int
	}{
		{0, 64}, {1, 64}, {64, 64}, {65, 4096}, {4096, 4096},
		{4097, 64 << 10}, {64 << 10, 64 << 10}, {64<<10 + 1, 1 << 20}, {1 << 20, 1 << 20},
	}
	for _, tt := range tests {
		b, err := p.Get(tt.n)
		if err != nil {
			t.Fatalf("Get(%d): %v", tt.n, err)
		}
		if b.Len() != tt.n || len(b.Bytes()) != tt.n || b.Cap() != tt.wantCap || cap(b.Bytes()) != tt.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tt.n, len(b.Bytes()), cap(b.Bytes()), tt.n, tt.wantCap)
		}
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(b.Bytes())))
		if addr%uintptr(min(tt.wantCap, hugeSize)) != 0 {
			t.Errorf("Get(%d): buffer at %#x not aligned to %d", tt.n, addr, tt.wantCap)
		}
		b.Release()
	}
	if p.MaxSize() != 1<<20 {
		t.Errorf("MaxSize = %d", p.MaxSize())
	}
}

func TestTooLarge(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	for _, n := range []int{1<<20 + 1, -1, math.MaxInt} {
		if b, err := p.Get(n); !errors.Is(err, ErrTooLarge) || !b.IsZero() {
			t.Errorf("Get(%d) = %v, %v; want zero Buffer, ErrTooLarge", n, b, err)
		}
	}
}

// TestDistinctBuffers holds every buffer of every class at once, writes a
// distinct byte into each and checks no two overlap.
func TestDistinctBuffers(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	var held []Buffer
	for _, c := range smallClasses {
		for i := 0; i < c.Count; i++ {
			b, err := p.Get(c.Size)
			if err != nil {
				t.Fatalf("Get(%d) #%d: %v", c.Size, i, err)
			}
			held = append(held, b)
		}
	}
	for i, b := range held {
		bs := b.Bytes()
		for j := range bs {
			bs[j] = byte(i)
		}
	}
	for i, b := range held {
		for j, v := range b.Bytes() {
			if v != byte(i) {
				t.Fatalf("buffer %d byte %d = %d: overlaps buffer %d", i, j, v, v)
			}
		}
	}
	if got := p.InUse(); got != len(held) {
		t.Errorf("InUse = %d, want %d", got, len(held))
	}
	for _, b := range held {
		b.Release()
	}
}

func TestExhausted(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	var held []Buffer
	for i := 0; i < 2; i++ {
		b, err := p.Get(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	for i := 0; i < 3; i++ {
		if _, err := p.Get(1 << 20); !errors.Is(err, ErrExhausted) {
			t.Fatalf("Get from an empty class: %v, want ErrExhausted", err)
		}
	}
	// Exhaustion of one class does not spill into another.
	small, err := p.Get(64)
	if err != nil {
		t.Fatalf("Get(64) with the 1 MiB class empty: %v", err)
	}
	small.Release()
	st := p.Stats()
	last := st.Classes[len(st.Classes)-1]
	if last.Exhausted != 3 || last.InUse != 2 || last.Free != 0 || last.Capacity != 2 {
		t.Errorf("1 MiB class stats %+v, want 3 exhausted, 2 in use, 0 free", last)
	}
	held[0].Release()
	b, err := p.Get(1 << 20)
	if err != nil {
		t.Fatalf("Get after a Release: %v", err)
	}
	b.Release()
	held[1].Release()
}

func TestRetain(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	b, err := p.Get(100)
	if err != nil {
		t.Fatal(err)
	}
	copy(b.Bytes(), "tail")
	b.Retain() // a write queue keeps it
	b.Release()
	if got := string(b.Bytes()[:4]); got != "tail" {
		t.Fatalf("retained buffer reads %q", got)
	}
	if p.InUse() != 1 {
		t.Fatalf("InUse = %d after first of two Releases", p.InUse())
	}
	b.Release()
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d after the last Release", p.InUse())
	}
}

func TestResize(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	b, err := p.Get(10)
	if err != nil {
		t.Fatal(err)
	}
	r := b.Resize(64)
	if len(r.Bytes()) != 64 || &r.Bytes()[0] != &b.Bytes()[0] {
		t.Fatal("Resize did not give a longer view of the same bytes")
	}
	mustPanic(t, func() { b.Resize(65) })
	r.Release()
	mustPanic(t, func() { b.Release() }) // the shared reference is gone
}

func TestMisuseCaught(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	t.Run("double release", func(t *testing.T) {
		b, _ := p.Get(64)
		b.Release()
		if msg := mustPanic(t, b.Release); !strings.Contains(msg, "after its last Release") {
			t.Errorf("panic %q", msg)
		}
	})
	t.Run("bytes after release", func(t *testing.T) {
		b, _ := p.Get(64)
		b.Release()
		mustPanic(t, func() { _ = b.Bytes() })
		mustPanic(t, b.Retain)
	})
	t.Run("stale view after reuse", func(t *testing.T) {
		b, _ := p.Get(1 << 20)
		b.Release()
		var c Buffer
		for { // the LIFO free list hands the same slot back
			c, _ = p.Get(1 << 20)
			if c.s == b.s {
				break
			}
			defer c.Release()
		}
		if msg := mustPanic(t, func() { _ = b.Bytes() }); !strings.Contains(msg, "earlier life") {
			t.Errorf("panic %q", msg)
		}
		mustPanic(t, b.Release)
		if p.InUse() != 1 {
			t.Errorf("a caught stale Release changed the count: InUse %d", p.InUse())
		}
		c.Release()
	})
	t.Run("zero buffer", func(t *testing.T) {
		var z Buffer
		if !z.IsZero() {
			t.Fatal("zero Buffer not IsZero")
		}
		if msg := mustPanic(t, z.Release); !strings.Contains(msg, "zero Buffer") {
			t.Errorf("panic %q", msg)
		}
	})
}

func TestCloseAndLeakAccounting(t *testing.T) {
	p, err := New(Config{Node: -1, Classes: smallClasses})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Get(64)
	b, _ := p.Get(4096)
	b.Retain()
	if n := p.InUse(); n != 2 {
		t.Fatalf("InUse = %d, want 2", n)
	}
	if err := p.Close(); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "2 buffers") {
		t.Fatalf("Close with 2 buffers out: %v", err)
	}
	if _, err := p.Get(64); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	_ = a.Bytes()[0] // still mapped: Close refused
	a.Release()
	b.Release()
	if err := p.Close(); !errors.Is(err, ErrInUse) {
		t.Fatalf("Close with a retained buffer out: %v", err)
	}
	b.Release()
	if n := p.InUse(); n != 0 {
		t.Fatalf("InUse = %d after every Release", n)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	mustPanic(t, a.Release)
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		classes []Class
		want    string
	}{
		{"empty", []Class{}, "size classes"},
		{"not a power of two", []Class{{100, 1}}, "not a power of two"},
		{"too small", []Class{{32, 1}}, "not a power of two in"},
		{"not growing", []Class{{128, 1}, {64, 1}}, "does not grow"},
		{"zero count", []Class{{64, 0}}, "count 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Node: -1, Classes: tt.classes})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDefaultClasses(t *testing.T) {
	cs := DefaultClasses()
	_, size, err := layout(cs)
	if err != nil {
		t.Fatal(err)
	}
	if cs[0].Size != 64 || cs[len(cs)-1].Size != 16<<20 {
		t.Errorf("classes run %d..%d, want 64..16 MiB", cs[0].Size, cs[len(cs)-1].Size)
	}
	if size > 80<<20 {
		t.Errorf("default arena is %d MiB", size>>20)
	}
}

// TestArenaSize: ArenaSize says what New maps, so that a program can fit
// its pools into a memory limit before making them.
func TestArenaSize(t *testing.T) {
	for _, cs := range [][]Class{nil, {{64, 10}}, {{4096, 3}, {1 << 20, 5}}} {
		want, err := ArenaSize(cs)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Node: -1, Classes: cs}
		if cs == nil {
			cfg.Classes = DefaultClasses() // newPool would take smallClasses for nil
		}
		if got := newPool(t, cfg).Arena().Size; got != want || want%hugeSize != 0 {
			t.Errorf("classes %v: New mapped %d bytes, ArenaSize says %d", cs, got, want)
		}
	}
	if _, err := ArenaSize([]Class{{100, 1}}); err == nil {
		t.Error("ArenaSize accepted a class that is not a power of two")
	}
}

// TestZeroAllocs asserts that the per-message calls allocate nothing.
func TestZeroAllocs(t *testing.T) {
	if testenv.RaceEnabled || debug {
		t.Skip("allocation counts are not meaningful under -race or hugepagedebug")
	}
	p := newPool(t, Config{Node: -1})
	for _, n := range []int{64, 4096, 64 << 10, 1 << 20} {
		allocs := testing.AllocsPerRun(1000, func() {
			b, err := p.Get(n)
			if err != nil {
				t.Fatal(err)
			}
			b.Bytes()[0] = 1
			b.Retain()
			b.Release()
			b.Release()
		})
		if allocs != 0 {
			t.Errorf("Get/Bytes/Retain/Release of %d bytes: %v allocs, want 0", n, allocs)
		}
		allocs = testing.AllocsPerRun(100, func() {
			var held [3]Buffer
			for i := range held {
				held[i], _ = p.Get(1 << 20)
			}
			for _, b := range held {
				if !b.IsZero() {
					b.Release()
				}
			}
		})
		if allocs != 0 {
			t.Errorf("ErrExhausted path: %v allocs, want 0", allocs)
		}
	}
}

// TestStress runs more goroutines than CPUs, each getting buffers, stamping
// them with its id, passing some to another goroutine that checks the stamp
// and releases them, and retaining others. A buffer handed to two holders at
// once shows up as a torn stamp.
func TestStress(t *testing.T) {
	p := newPool(t, Config{Node: -1, Classes: []Class{{64, 8}, {4096, 4}}})
	workers := 4 * runtime.GOMAXPROCS(0)
	iters := 5000
	if testing.Short() {
		iters = 500
	}
	handoff := make(chan Buffer, 4)
	var releasers sync.WaitGroup
	for r := 0; r < 2; r++ {
		releasers.Add(1)
		go func() {
			defer releasers.Done()
			for b := range handoff {
				checkStamp(t, b)
				b.Release()
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(id byte) {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				size := 64
				if i%3 == 0 {
					size = 4096
				}
				b, err := getStamped(t, p.Get, size, id)
				if errors.Is(err, ErrExhausted) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				switch i % 4 {
				case 0:
					handoff <- b // released by another goroutine
				case 1:
					b.Retain()
					checkStamp(t, b)
					b.Release()
					b.Release()
				default:
					b.Release()
				}
			}
		}(byte(w + 1))
	}
	wg.Wait()
	close(handoff)
	releasers.Wait()
}

// getStamped takes a buffer of size from get (Pool.Get or Cache.Get), fills
// it with id and checks that no other holder wrote it meanwhile. When the
// class is exhausted it yields and returns ErrExhausted.
func getStamped(t *testing.T, get func(int) (Buffer, error), size int, id byte) (Buffer, error) {
	b, err := get(size)
	if err != nil {
		if errors.Is(err, ErrExhausted) {
			runtime.Gosched()
		}
		return Buffer{}, err
	}
	bs := b.Bytes()
	for j := range bs {
		bs[j] = id
	}
	checkStamp(t, b)
	return b, nil
}

// checkStamp fails the test if b's bytes are not all the same id.
func checkStamp(t *testing.T, b Buffer) {
	t.Helper()
	bs := b.Bytes()
	for _, v := range bs {
		if v != bs[0] {
			t.Errorf("buffer written by two holders: %d and %d", bs[0], v)
			return
		}
	}
}
