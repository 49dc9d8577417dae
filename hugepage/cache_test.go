package hugepage

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

func TestCacheKeepsSlotsLocal(t *testing.T) {
	p := newPool(t, Config{Node: -1}) // 64 B class: 64 slots, cache of 8
	c := p.NewCache()
	b, err := c.Get(64)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.classes[0].n; got != 3 {
		t.Fatalf("after the first Get the cache holds %d slots, want 3 (refilled 4, handed 1)", got)
	}
	first := b.s
	c.Release(b)
	b2, err := c.Get(64)
	if err != nil {
		t.Fatal(err)
	}
	if b2.s != first {
		t.Fatal("Get after a cached Release did not reuse the cached slot")
	}
	if p.InUse() != 1 {
		t.Fatalf("InUse = %d", p.InUse())
	}
	c.Release(b2)
	if p.InUse() != 0 {
		t.Fatalf("cached slots counted in use: InUse = %d", p.InUse())
	}
	c.Flush()
	if c.classes[0].n != 0 {
		t.Fatal("Flush left slots in the cache")
	}
}

// TestCacheOverflowAndSmallClasses: a cache hands half back when full, and a
// class of few buffers (1 MiB x 2 here) is not cached at all.
func TestCacheOverflowAndSmallClasses(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	c := p.NewCache()
	var held []Buffer
	for i := 0; i < 20; i++ {
		b, err := c.Get(64)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	for _, b := range held {
		c.Release(b)
		if n := c.classes[0].n; n > c.classes[0].max {
			t.Fatalf("cache holds %d slots, max %d", n, c.classes[0].max)
		}
	}
	big, err := c.Get(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(big)
	if n := c.classes[len(c.classes)-1].n; n != 0 {
		t.Fatalf("1 MiB class cached %d slots; want none", n)
	}
	c.Flush()
	// Everything is reachable again from the shared lists.
	for range 64 {
		b, err := p.Get(64)
		if err != nil {
			t.Fatalf("shared list lost slots: %v", err)
		}
		defer b.Release()
	}
}

func TestCacheMixedRelease(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	c := p.NewCache()
	a, _ := c.Get(100)
	done := make(chan struct{})
	go func() { a.Release(); close(done) }() // another goroutine gives it back
	<-done
	b, _ := p.Get(100)
	c.Release(b) // a shared-list buffer given back through the cache
	mustPanic(t, func() { c.Release(b) })
	c.Flush()
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d", p.InUse())
	}
}

func TestCacheAfterClose(t *testing.T) {
	p, err := New(Config{Node: -1, Classes: smallClasses})
	if err != nil {
		t.Fatal(err)
	}
	c := p.NewCache()
	b, _ := c.Get(64)
	c.Release(b) // slot now cached, free
	if err := p.Close(); err != nil {
		t.Fatalf("Close with slots only cached: %v", err)
	}
	if _, err := c.Get(64); !errors.Is(err, ErrClosed) {
		t.Fatalf("cache Get after Close: %v, want ErrClosed", err)
	}
}

func TestCacheZeroAllocs(t *testing.T) {
	if testenv.RaceEnabled || debug {
		t.Skip("allocation counts are not meaningful under -race or hugepagedebug")
	}
	p := newPool(t, Config{Node: -1})
	c := p.NewCache()
	t.Cleanup(c.Flush)
	for _, n := range []int{64, 4096, 64 << 10, 1 << 20} {
		allocs := testing.AllocsPerRun(1000, func() {
			b, err := c.Get(n)
			if err != nil {
				t.Fatal(err)
			}
			b.Bytes()[0] = 1
			c.Release(b)
		})
		if allocs != 0 {
			t.Errorf("Cache Get/Release of %d bytes: %v allocs, want 0", n, allocs)
		}
	}
}

// TestCacheStress gives each of several "loops" (more than CPUs) its own
// cache; a quarter of the buffers are released by a shared releaser
// goroutine instead, as writes completing elsewhere would be.
func TestCacheStress(t *testing.T) {
	p := newPool(t, Config{Node: -1, Classes: []Class{{64, 64}, {4096, 32}}})
	loops := 2 * runtime.GOMAXPROCS(0)
	if loops < 4 {
		loops = 4
	}
	iters := 5000
	if testing.Short() {
		iters = 500
	}
	handoff := make(chan Buffer, 8)
	var rel sync.WaitGroup
	rel.Add(1)
	go func() {
		defer rel.Done()
		for b := range handoff {
			checkStamp(t, b)
			b.Release()
		}
	}()
	var wg sync.WaitGroup
	for l := 0; l < loops; l++ {
		wg.Add(1)
		go func(id byte) {
			defer wg.Done()
			c := p.NewCache()
			defer c.Flush()
			for i := 0; i < iters; i++ {
				size := 64
				if i%2 == 0 {
					size = 4096
				}
				b, err := getStamped(t, c.Get, size, id)
				if errors.Is(err, ErrExhausted) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%4 == 0 {
					handoff <- b
				} else {
					c.Release(b)
				}
			}
		}(byte(l + 1))
	}
	wg.Wait()
	close(handoff)
	rel.Wait()
}

// TestCacheReleaseOtherPool: a loop may give back, through its cache, a
// buffer of another pool (say a pool with more classes); it goes home.
func TestCacheReleaseOtherPool(t *testing.T) {
	small := newPool(t, Config{Node: -1, Classes: []Class{{64, 16}}})
	other := newPool(t, Config{Node: -1})
	c := small.NewCache()
	b, err := other.Get(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(b)
	if other.InUse() != 0 || c.classes[0].n != 0 {
		t.Fatalf("other pool InUse %d, cache holds %d", other.InUse(), c.classes[0].n)
	}
}
