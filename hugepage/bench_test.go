package hugepage

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// benchClasses has one class per benchmarked size, with enough buffers that
// RunParallel's goroutines never find a class empty.
var benchClasses = []Class{
	{64, 256}, {1 << 10, 256}, {4 << 10, 64}, {64 << 10, 32}, {256 << 10, 16}, {1 << 20, 16}, {16 << 20, 2},
}

func benchPool(b *testing.B) *Pool {
	b.Helper()
	return newPool(b, Config{Node: 0, Classes: benchClasses})
}

// BenchmarkGetRelease is one Get and one Release on one goroutine: the loop
// thread taking a read buffer and giving it back.
func BenchmarkGetRelease(b *testing.B) {
	p := benchPool(b)
	for _, c := range benchClasses {
		b.Run(sizeName(c.Size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(c.Size))
			for b.Loop() {
				buf, err := p.Get(c.Size)
				if err != nil {
					b.Fatal(err)
				}
				buf.Release()
			}
		})
	}
}

// BenchmarkGetReleaseParallel is the same under contention: RunParallel with
// 4 goroutines per CPU on one class, all on the same free list.
func BenchmarkGetReleaseParallel(b *testing.B) {
	p := benchPool(b)
	for _, c := range benchClasses {
		b.Run(sizeName(c.Size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(c.Size))
			b.SetParallelism(4)
			var exhausted atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					buf, err := p.Get(c.Size)
					if err != nil {
						exhausted.Add(1) // ErrExhausted: allowed, never blocks
						continue
					}
					buf.Release()
				}
			})
			b.ReportMetric(float64(exhausted.Load())/float64(b.N), "exhausted/op")
		})
	}
}

// BenchmarkRetainRelease is the slow path of a write queue keeping a view.
func BenchmarkRetainRelease(b *testing.B) {
	p := benchPool(b)
	buf, err := p.Get(64 << 10)
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Release()
	b.ReportAllocs()
	for b.Loop() {
		buf.Retain()
		buf.Release()
	}
}

// BenchmarkAlternatives puts the same 64 KiB get/put next to make([]byte) and
// sync.Pool, the two things a Go server would otherwise use.
func BenchmarkAlternatives(b *testing.B) {
	const size = 64 << 10
	b.Run("hugepage", func(b *testing.B) {
		p := benchPool(b)
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			buf, _ := p.Get(size)
			buf.Bytes()[0] = 1
			buf.Release()
		}
	})
	b.Run("make", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			buf := make([]byte, size)
			buf[0] = 1
			sink = buf
		}
	})
	b.Run("syncpool", func(b *testing.B) {
		sp := sync.Pool{New: func() any { return new([size]byte) }}
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			buf := sp.Get().(*[size]byte)
			buf[0] = 1
			sp.Put(buf)
		}
	})
}

var sink []byte

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkCacheGetRelease is BenchmarkGetRelease through a loop's Cache.
func BenchmarkCacheGetRelease(b *testing.B) {
	p := benchPool(b)
	c := p.NewCache()
	b.Cleanup(c.Flush)
	for _, cl := range benchClasses {
		b.Run(sizeName(cl.Size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(cl.Size))
			for b.Loop() {
				buf, err := c.Get(cl.Size)
				if err != nil {
					b.Fatal(err)
				}
				c.Release(buf)
			}
		})
	}
}

// BenchmarkCacheGetReleaseParallel gives each RunParallel goroutine (4 per
// CPU) its own Cache, as each reactor loop has.
func BenchmarkCacheGetReleaseParallel(b *testing.B) {
	p := benchPool(b)
	for _, cl := range benchClasses {
		b.Run(sizeName(cl.Size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(cl.Size))
			b.SetParallelism(4)
			var exhausted atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				c := p.NewCache()
				defer c.Flush()
				for pb.Next() {
					buf, err := c.Get(cl.Size)
					if err != nil {
						exhausted.Add(1)
						continue
					}
					c.Release(buf)
				}
			})
			b.ReportMetric(float64(exhausted.Load())/float64(b.N), "exhausted/op")
		})
	}
}
